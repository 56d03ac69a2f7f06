"""``Prefer: processing=SECONDS`` read as RFC 7240 says (anything not understood is ignored,
never an error), and the interim answers' cadence; and the client skipping 1xx interim
answers before the final one (RFC 9110 §15.2) over a real Unix socket."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from bridge import client_wire
from bridge.client import BridgeClient, DaemonUnavailable
from bridge.client_wire import UnixHTTPConnection
from bridge.local.processing import interim_every, silence_allowed


@pytest.mark.parametrize(("fields", "seconds"), [
    ({"Prefer": "processing=30"}, 30.0),
    ({"Prefer": "respond-async, Processing = 2.5 ; x=y"}, 2.5),
    ({"Prefer": 'processing="7"'}, 7.0),
    ({}, None),
    ({"Prefer": "processing"}, None),  # no number: not understood, ignored
    ({"Prefer": "processing=soon"}, None),
    ({"Prefer": "processing=-1"}, None),
    ({"Prefer": "processing=nan"}, None),
    ({"Prefer": "processing=inf"}, None),
    ({"Prefer": "wait=10"}, None),
])
def test_a_preference_not_understood_is_ignored(fields: dict[str, str],
                                                seconds: float | None) -> None:
    request = make_mocked_request("POST", "/v1/documents/D/acks", headers=fields)
    assert silence_allowed(request) == seconds


def test_interim_answers_come_three_times_per_silence_allowed_within_bounds() -> None:
    assert interim_every(30) == 5.0  # at most every 5 s
    assert interim_every(3) == 1.0
    assert interim_every(0.001) == 0.05  # never a flood


def test_client_skips_interim_answers_before_the_final_one(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while not request.endswith(b"{}"):  # the head and the body, however they come
                request += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" * 3
                         + b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                         + b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
    serving = threading.Thread(target=answer)
    serving.start()
    client = UnixHTTPConnection(str(path), timeout=10)
    try:
        client.request("POST", "/v1/documents/D/acks", body=b"{}")
        resp = client.getresponse()
        assert (resp.status, resp.read()) == (202, b"{}")
    finally:
        client.close()
        serving.join(timeout=10)
        server.close()


def test_a_daemon_that_answers_only_102_for_ever_is_given_up_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung database thread behind a living event loop: 102 after 102 and never a final
    answer. Each keeps the silence timeout from firing, so only the cap on work ends it."""
    monkeypatch.setattr(client_wire, "WORK_AT_MOST", 0.5)
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    stop = threading.Event()

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            until = time.monotonic() + 15  # then hang up: without the cap, a test that ends
            while not stop.wait(0.05) and time.monotonic() < until:  # 102s within 10 s each
                try:
                    conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
                except OSError:
                    return
    serving = threading.Thread(target=answer)
    serving.start()
    client = BridgeClient(path, timeout=10, busy_tries=0)
    started = time.monotonic()
    try:
        with pytest.raises(DaemonUnavailable, match=r"still working for more than 0\.5 s") as err:
            client.acknowledge("D", all="RECEIVED")
        assert err.value.reached  # it may have acted: the message says so
        assert "may or may not have been taken" in str(err.value)
        assert time.monotonic() - started < 5  # not the silence timeout of 10 s
    finally:
        stop.set()
        serving.join(timeout=10)
        server.close()
