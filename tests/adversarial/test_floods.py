"""Floods, each against a daemon with tight limits of its own (so the shared one never meets
them): hundreds of idle connections, every connection slot busy, a request-rate flood from one
peer, a garbage flood from one address, and a refusal flood that must not grow the store
without bound. Every loop is bounded in count and time and stops by itself; all of it goes to
127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from bridge.core import answers as transport
from bridge.core.errors import PeerError
from bridge.daemon.pair import LOOPBACK
from bridge.home.config import Limits

from .conftest import build_world, stop
from .hostile import (
    ENVELOPE_TYPE,
    World,
    manifest,
    metric,
    one_chunk,
    peer_health,
    serving,
    status_of,
    unique,
)

TIGHT = Limits(max_connections=16, requests_per_second=5.0, burst=10, body_read_seconds=4.0,
               idle_seconds=3.0, max_header_bytes=4096, max_headers=32,
               refusal_records_per_minute=600)
FLOOD = 200  # connections held open at once
_drained: set[str] = set()  # the token buckets a flood case emptied


@pytest.fixture(scope="module")
def tight_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("tight"), TIGHT)
    yield world
    stop(world.beta)


@pytest.fixture
def tight(tight_world: World, request: pytest.FixtureRequest) -> World:
    tight_world.forger.sync()
    tight_world.gforger.sync()
    request.node.bridge_nodes = [tight_world.beta]
    if _drained:
        # Let the buckets an earlier flood emptied fill up again.
        time.sleep(TIGHT.burst / TIGHT.requests_per_second)
        _drained.clear()
    return tight_world


def poll(predicate: Callable[[], bool], *, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def held_open(port: int, n: int, first_bytes: Callable[[int], bytes]) -> Iterator[
        list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for i in range(n):
            s = socket.create_connection((LOOPBACK, port), timeout=10)
            socks.append(s)
            data = first_bytes(i)
            if data:
                with contextlib.suppress(OSError):  # an evicted one may be closed already
                    s.sendall(data)
        yield socks
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


def slow_post(_: int) -> bytes:
    return (b"POST /v1/envelopes HTTP/1.1\r\nHost: b\r\n"
            + f"Content-Type: {ENVELOPE_TYPE}\r\n".encode()
            + b"Content-Length: 100000\r\n\r\n" + b"\x83" * 10)


def test_flood_of_idle_connections_makes_way_for_new_requests(tight: World) -> None:
    """200 connections held open at once, half saying nothing, half a request line and no
    more: the daemon keeps at most 16, closes the oldest idle one for each newcomer, and keeps
    answering /v1/health on both doors all the while."""
    beta = tight.beta
    evicted = metric(beta, "peer_connections_evicted_total")
    with held_open(tight.port, FLOOD,
                   lambda i: b"" if i % 2 else b"POST /v1/envelopes HTTP/1.1\r\n"):
        for _ in range(3):
            serving(beta)
        assert metric(beta, "peer_connections_open") <= TIGHT.max_connections
    # The daemon may still be taking (and closing) the last of them from its backlog.
    poll(lambda: metric(beta, "peer_connections_evicted_total") - evicted
         >= FLOOD - TIGHT.max_connections, what="the flood's connections to be evicted")
    assert metric(beta, "peer_connections_peak") <= TIGHT.max_connections
    # Recovered: an envelope is taken as usual.
    tight.accept(one_chunk(manifest(tight.alpha_key, unique("M-AFTER-FLOOD"))))
    poll(lambda: metric(beta, "peer_connections_open") <= 2, what="connections to close")


def test_every_connection_busy_gets_503_then_recovers_after_the_body_deadline(
        tight: World) -> None:
    """16 senders that never finish their bodies hold every slot with a request in progress:
    a newcomer is answered 503 at once (nothing to evict), the local socket still answers,
    and once the body deadline cuts the senders off, the peer endpoint answers again."""
    beta = tight.beta
    refused = metric(beta, "peer_connections_refused_total")
    with held_open(tight.port, TIGHT.max_connections, slow_post):
        poll(lambda: metric(beta, "peer_requests_in_progress") == TIGHT.max_connections,
             what="every slot busy", timeout=TIGHT.body_read_seconds * 0.8)
        with socket.create_connection((LOOPBACK, tight.port), timeout=10) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: b\r\n\r\n")
            answer = s.recv(4096)
        assert status_of(answer) == 503 and b"Retry-After" in answer, answer
        assert beta.client.health()["status"] == "ok"
        assert metric(beta, "peer_connections_refused_total") == refused + 1

        def health_again() -> bool:
            try:
                return peer_health(beta)["status"] == "ok"
            except (AssertionError, OSError):
                return False

        poll(health_again, what="the peer endpoint to answer again",
             timeout=TIGHT.body_read_seconds + 15)
    assert metric(beta, "peer_body_timeout_total") >= TIGHT.max_connections


def _post_on(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes, str | None]:
    conn.request("POST", "/v1/envelopes", body=body, headers={"Content-Type": ENVELOPE_TYPE})
    resp = conn.getresponse()
    return resp.status, resp.read(), resp.getheader("Retry-After")


def test_request_rate_flood_from_one_peer_gets_429(tight: World) -> None:
    """alpha replays one envelope 60 times as fast as it can, on one connection: past its
    burst it gets 429 with Retry-After and no signed answer; the refusal is recorded at most
    once a second; gamma, another peer, is not slowed down by alpha's flood."""
    beta = tight.beta
    env, receipt = tight.accept(one_chunk(manifest(tight.alpha_key, unique("M-RATE"))))
    limited = metric(beta, "peer_rate_limited_total")
    rows = len(tight.view.q("SELECT 1 FROM refusals WHERE reason='rate_limited'"))
    conn = http.client.HTTPConnection(LOOPBACK, tight.port, timeout=30)
    statuses: list[int] = []
    start = time.monotonic()
    try:
        for _ in range(60):  # bounded
            status, body, retry_after = _post_on(conn, env.data)
            statuses.append(status)
            if status == 200:
                assert body == receipt
            else:
                assert status == 429 and retry_after is not None and int(retry_after) >= 1
                with pytest.raises(PeerError):  # nothing signed: a flood must not make us sign
                    transport.parse_answer(body, tight.beta_pub)
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    _drained.add("alpha")
    ok, over = statuses.count(200), statuses.count(429)
    assert over > 0 and ok + over == 60
    assert ok <= TIGHT.burst + TIGHT.requests_per_second * elapsed + 1
    assert metric(beta, "peer_rate_limited_total") - limited == over
    new_rows = len(tight.view.q("SELECT 1 FROM refusals WHERE reason='rate_limited'")) - rows
    assert 1 <= new_rows <= elapsed + 2
    # Another peer's bucket is its own.
    tight.accept(one_chunk(manifest(tight.gamma_key, unique("M-GAMMA-OK"))),
                 forger=tight.gforger)
    serving(beta)


def test_garbage_flood_from_one_address_gets_429(tight: World) -> None:
    """Bodies no parser can read are charged to the address they came from: past the burst,
    429; the store grows by at most a bounded number of refusal rows."""
    beta = tight.beta
    before = tight.view.counts()
    conn = http.client.HTTPConnection(LOOPBACK, tight.port, timeout=30)
    statuses: list[int] = []
    start = time.monotonic()
    try:
        for n in range(60):  # bounded
            statuses.append(_post_on(conn, b"\xc1 garbage %d" % n)[0])
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    _drained.add("address")
    assert set(statuses) <= {400, 429} and statuses.count(429) > 0
    assert statuses.count(400) <= TIGHT.burst + TIGHT.requests_per_second * elapsed + 1
    after = tight.view.counts()
    grown = after["refusals"] - before["refusals"]
    assert grown <= TIGHT.burst + (TIGHT.requests_per_second + 1) * elapsed + 2
    for table in ("documents", "items", "inbox", "outbox"):
        assert after[table] == before[table]
    serving(beta)


def test_refusal_flood_does_not_grow_the_store_without_bound(
        own_world: Callable[[Limits], World]) -> None:
    """With a cap of 5 refusal writes a minute: 30 garbage bodies (the same one 10 times, then
    20 different ones) are one row, coalesced by source and reason, which counts the 5
    written; the other 25 are counted against that row's key, to be added at its next write.
    Every one of the 30 still gets its signed answer."""
    world = own_world(Limits(requests_per_second=1000.0, burst=1000,
                             refusal_records_per_minute=5))
    beta = world.beta
    before = world.view.counts()
    for _ in range(10):
        world.expect(b"\xc1 the same garbage", status=400, result="rejected",
                     reason="malformed")
    for n in range(20):
        world.expect(b"\xc1 garbage %d" % n, status=400, result="rejected", reason="malformed")
    after = world.view.counts()
    assert after["refusals"] - before["refusals"] == 1
    assert after["audit"] - before["audit"] == 1  # the audit log records each row once
    assert world.view.q("SELECT count FROM refusals WHERE reason='malformed'") == [(5,)]
    assert metric(beta, "refusals_not_recorded_total") == 25
    serving(beta)


def test_garbage_flood_is_a_handful_of_coalesced_rows_with_counts(
        own_world: Callable[[Limits], World]) -> None:
    """Thousands of distinct unauthenticated garbage bodies, of three kinds, with no cap on
    writes: the store grows by one refusal row (and one audit record) per kind and hour, each
    counting its refusals exactly, so a month of garbage is at most a few rows an hour."""
    world = own_world(Limits(requests_per_second=1e6, burst=1_000_000,
                             refusal_records_per_minute=1_000_000))
    beta = world.beta
    before = world.view.counts()
    rejected = metric(beta, "envelopes_rejected")
    kinds = {"malformed": b"\xc1 garbage %b", "trailing": b"\x00 garbage %b",
             "not_envelope": b"\x81\xa1x\xa4%b"}  # {"x": "NNNN"}: not an envelope
    n = 1500
    conn = http.client.HTTPConnection(LOOPBACK, world.port, timeout=60)
    try:
        for i in range(n):  # bounded
            reason = list(kinds)[i % 3]
            body = kinds[reason] % f"{i:04x}".encode()
            assert _post_on(conn, body)[0] == 400, (i, reason)
    finally:
        conn.close()
    after = world.view.counts()
    hours = 2  # the flood may straddle the turn of an hour
    assert 3 <= after["refusals"] - before["refusals"] <= 3 * hours
    assert after["audit"] - before["audit"] == after["refusals"] - before["refusals"]
    counts = dict(world.view.q("SELECT reason, SUM(count) FROM refusals GROUP BY reason"))
    assert {r: counts.get(r) for r in kinds} == {r: n // 3 for r in kinds}
    assert metric(beta, "envelopes_rejected") - rejected == n  # /metrics shows the counts
    serving(beta)
