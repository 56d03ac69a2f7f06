"""The HTTP door of the peer endpoint: wrong methods, paths and content types; header size and
count limits; a sender that never finishes its body, and one that never finishes its headers.
None of these reaches the envelope code; the daemon keeps serving everyone else meanwhile."""

from __future__ import annotations

import socket
import time

import pytest

from bridge.daemon.pair import LOOPBACK

from .conftest import SHARED_LIMITS
from .hostile import (
    Check,
    World,
    manifest,
    metric,
    one_chunk,
    raw_exchange,
    request,
    serving,
    status_of,
    store_holds,
    unique,
)

DEADLINE = SHARED_LIMITS.body_read_seconds
IDLE = SHARED_LIMITS.idle_seconds
HEADER = SHARED_LIMITS.max_header_bytes


def genuine(world: World) -> bytes:
    return world.forger.seal(one_chunk(manifest(world.alpha_key, unique("M-HTTP")))).data


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_http_method_on_the_envelope_path(world: World, method: str) -> None:
    with store_holds(world.beta, world.view):
        reply = request(world.port, genuine(world), method=method)
        assert reply.status == 405


@pytest.mark.parametrize("path", ["/v1/envelope", "/v2/envelopes", "/v1/envelopes/1",
                                  "/v1/envelopes/../envelopes%00", "/"])
def test_wrong_path(world: World, path: str) -> None:
    with store_holds(world.beta, world.view):
        reply = request(world.port, genuine(world), path=path)
        assert reply.status in (404, 405), reply


@pytest.mark.parametrize("content_type", ["text/plain", "application/json",
                                          "application/octet-stream", None])
def test_wrong_content_type(world: World, content_type: str | None) -> None:
    """Refused before the body is read, unsigned: a genuine envelope in the wrong wrapper is
    not taken (and not taken into the chain)."""
    count = metric(world.beta, "peer_wrong_content_type_total")
    with store_holds(world.beta, world.view, Check(limit_refusal="wrong_content_type")):
        reply = request(world.port, genuine(world), content_type=content_type)
        assert reply.status == 415
    assert metric(world.beta, "peer_wrong_content_type_total") == count + 1


@pytest.mark.parametrize("where", ["one header line", "the request line", "many headers"])
def test_headers_over_the_limit(world: World, where: str) -> None:
    count = metric(world.beta, "peer_header_too_large_total")
    if where == "one header line":
        head = b"POST /v1/envelopes HTTP/1.1\r\nHost: b\r\nX-Pad: " + b"a" * (HEADER + 10)
    elif where == "the request line":
        head = b"POST /v1/envelopes?" + b"a" * (HEADER + 10) + b" HTTP/1.1\r\nHost: b"
    else:
        head = b"POST /v1/envelopes HTTP/1.1\r\nHost: b" + b"".join(
            b"\r\nX-H%d: 1" % i for i in range(SHARED_LIMITS.max_headers + 8))
    with store_holds(world.beta, world.view):
        raw = raw_exchange(world.port, head + b"\r\nContent-Length: 0\r\n\r\n", timeout=10)
        assert status_of(raw) == 400, raw[:200]
    assert metric(world.beta, "peer_header_too_large_total") == count + 1


def test_header_just_under_the_limit_is_served(world: World) -> None:
    reply = request(world.port, method="GET", path="/v1/health", content_type=None,
                    headers={"X-Pad": "a" * (HEADER - 100)})
    assert reply.status == 200


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the daemon sent before closing, and when it closed (monotonic)."""
    out = b""
    sock.settimeout(0.5)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out, time.monotonic()


def test_slow_sender_that_never_finishes_its_body_is_cut_off(world: World) -> None:
    count = metric(world.beta, "peer_body_timeout_total")
    env, receipt = world.accept(one_chunk(manifest(world.alpha_key, unique("M-MEANWHILE"))))
    with store_holds(world.beta, world.view, Check(limit_refusal="body_timeout")):
        sock = socket.create_connection((LOOPBACK, world.port), timeout=10)
        with sock:
            start = time.monotonic()
            sock.sendall(b"POST /v1/envelopes HTTP/1.1\r\nHost: b\r\n"
                         b"Content-Type: application/vnd.bridge.envelope\r\n"
                         b"Content-Length: 50000\r\n\r\n" + b"\x83" * 100)
            # Meanwhile everyone else is served: an envelope (a replay: its receipt again),
            # and both health doors.
            again = world.post(env.data)
            assert (again.status, again.body) == (200, receipt)
            serving(world.beta)
            served = time.monotonic()
            raw, closed = _read_until_closed(sock, DEADLINE + 15)
    assert served < closed  # all that while the slow sender still held its connection
    assert status_of(raw) == 408, raw[:200]
    assert DEADLINE * 0.8 <= closed - start <= DEADLINE + 10, closed - start
    assert metric(world.beta, "peer_body_timeout_total") == count + 1


def test_trickling_sender_is_cut_off_at_the_deadline_whatever_it_sends(world: World) -> None:
    """One byte every 100 ms keeps the connection busy but not alive for ever: the deadline is
    for the whole body, not for each byte."""
    sock = socket.create_connection((LOOPBACK, world.port), timeout=10)
    with sock:
        start = time.monotonic()
        sock.sendall(b"POST /v1/envelopes HTTP/1.1\r\nHost: b\r\n"
                     b"Content-Type: application/vnd.bridge.envelope\r\n"
                     b"Content-Length: 50000\r\n\r\n")
        cut = None
        for _ in range(int((DEADLINE + 10) / 0.1)):  # bounded: gives up after the deadline
            try:
                sock.sendall(b"\x00")
            except OSError:
                cut = time.monotonic()
                break
            time.sleep(0.1)
            sock.settimeout(0.001)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                data = None
            except OSError:
                data = b""
            sock.settimeout(10)
            if data is not None:
                assert data == b"" or status_of(data) == 408, data[:200]
                cut = time.monotonic()
                break
    assert cut is not None, "the trickling sender was never cut off"
    assert cut - start <= DEADLINE + 10
    serving(world.beta)


def test_slowloris_that_never_finishes_its_headers_is_cut_off_when_idle(world: World) -> None:
    sock = socket.create_connection((LOOPBACK, world.port), timeout=10)
    with sock:
        start = time.monotonic()
        sock.sendall(b"POST /v1/envelopes HTTP/1.1\r\nHost: b\r\n")
        closed = None
        for n in range(int((IDLE + 10) / 0.3)):  # bounded
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % n)
            except OSError:
                closed = time.monotonic()
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(65536) == b"":
                    closed = time.monotonic()
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = time.monotonic()
                break
        serving(world.beta)
    assert closed is not None, "the slowloris connection was never closed"
    assert closed - start <= IDLE + 10


def test_idle_connection_is_closed_after_the_idle_time(world: World) -> None:
    sock = socket.create_connection((LOOPBACK, world.port), timeout=10)
    with sock:
        start = time.monotonic()
        _, closed = _read_until_closed(sock, IDLE + 10)
    assert IDLE * 0.8 <= closed - start <= IDLE + 10
