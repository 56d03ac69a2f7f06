"""A kept connection the daemon closes at the wrong moment (RFC 9112 §9.3.1).

``bridge.client`` drops an idle connection it sees closed before use; these tests close one
*after* that check: the server reads the next request on the kept connection and hangs up
without a byte of answer (its idle timer ran as the request came in). An idempotent request is
then sent once more on a new connection; any other fails saying that it may or may not have
been taken, and is not sent twice.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.client import BridgeClient, DaemonUnavailable


class HangingUpServer:
    """A Unix-socket HTTP/1.1 server in a thread. It answers the first request of every
    connection and keeps it open; a later request on the same connection is read whole and
    the connection closed with no answer (``reset`` closes it with the request unread, which
    the client sees as a reset). ``seen`` lists (connection number, method, path, body)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hang_up_fresh = False  # a new connection's first request too
        self.reset = False
        self.seen: list[tuple[int, str, str, bytes]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        n = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            n += 1
            threading.Thread(target=self._connection, args=(n, conn), daemon=True).start()

    def _connection(self, n: int, conn: socket.socket) -> None:
        with conn:
            buf = b""
            for k in range(2):
                if self.reset and k == 1:
                    # Wait for the request's first bytes, then close with them unread.
                    conn.recv(1, socket.MSG_PEEK)
                    self.seen.append((n, "?", "?", b""))
                    return
                request, buf = _read_request(conn, buf)
                if request is None:
                    return
                self.seen.append((n, *request))
                if k == 1 or self.hang_up_fresh:
                    return  # read, not answered
                body = json.dumps({"path": request[1], "connection": n}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def _read_request(conn: socket.socket, buf: bytes
                  ) -> tuple[tuple[str, str, bytes] | None, bytes]:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ")
    length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                   if line.lower().startswith("content-length:")), 0)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return (method, path, rest[:length]), rest[length:]


@pytest.fixture()
def kept() -> Iterator[tuple[HangingUpServer, BridgeClient]]:
    """A client whose connection 1 is idle, kept, and hung up on at its next request (in a
    short directory: a Unix socket's path is about 107 bytes at most)."""
    home = Path(tempfile.mkdtemp(prefix="bk", dir="/tmp"))
    server = HangingUpServer(home / "bridge.sock")
    client = BridgeClient(server.path, timeout=10)
    assert client.health()["connection"] == 1
    yield server, client
    server.close()
    shutil.rmtree(home, ignore_errors=True)


Kept = tuple[HangingUpServer, BridgeClient]


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_get_on_a_kept_connection_closed_under_it_is_sent_again_on_a_new_one(
        kept: Kept, reset: bool) -> None:
    server, client = kept
    server.reset = reset
    assert client.document("D-1") == {"path": "/v1/documents/D-1", "connection": 2}
    assert [(n, path) for n, _m, path, _b in server.seen][-1] == (2, "/v1/documents/D-1")


def test_a_submission_with_its_id_on_a_kept_connection_closed_under_it_is_sent_again(
        kept: Kept) -> None:
    server, client = kept
    got = client.submit_document("roster", "bravo", [{"id": "r-1"}], id="R-1")
    assert got["connection"] == 2
    sent = [(n, body) for n, method, _p, body in server.seen if method == "POST"]
    assert [n for n, _b in sent] == [1, 2] and sent[0][1] == sent[1][1]


def test_a_submission_without_an_id_is_never_sent_twice_and_says_it_may_have_been_taken(
        kept: Kept) -> None:
    server, client = kept
    with pytest.raises(DaemonUnavailable) as exc:
        client.submit_document("roster", "bravo", [{"id": "r-1"}])
    assert exc.value.reached
    assert "may or may not have been taken" in str(exc.value)
    assert [m for _n, m, _p, _b in server.seen].count("POST") == 1


def test_an_acknowledgement_is_not_sent_twice_by_itself(kept: Kept) -> None:
    server, client = kept
    with pytest.raises(DaemonUnavailable, match="may or may not have been taken"):
        client.acknowledge("M-1", all="RECEIVED")
    assert [m for _n, m, _p, _b in server.seen].count("POST") == 1


def test_a_get_is_sent_again_once_only_when_the_new_connection_hangs_up_too(
        kept: Kept) -> None:
    server, client = kept
    server.hang_up_fresh = True
    with pytest.raises(DaemonUnavailable) as exc:
        client.document("D-1")
    assert exc.value.reached and "may or may not" not in str(exc.value)
    assert [n for n, _m, path, _b in server.seen if path == "/v1/documents/D-1"] == [1, 2]
