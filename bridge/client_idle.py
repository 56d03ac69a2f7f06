"""The connections ``bridge.client`` keeps between requests (HTTP/1.1 keep-alive, RFC 9112
§9.3): a request takes an idle connection to the daemon that is still open instead of
connecting again, and gives it back once its answer is read to the end. A new connection costs
the daemon about half a millisecond of CPU (accepting it, a protocol and a request handler for
it, its close), on every submission and acknowledgement.

What keeps this from going stale: a connection is kept only after a whole answer that does not
close it, for ``KEEP_IDLE`` seconds at most (well inside the 75 s after which the daemon closes
an idle one), and one the daemon has closed meanwhile (it restarted, or its idle timer ran) is
seen readable before it is used (its end of file) and dropped. Standard library only, like the
client.
"""

from __future__ import annotations

import http.client
import select
import threading
import time
import weakref

from bridge.client_wire import UnixHTTPConnection

KEEP_IDLE = 20.0
"""Seconds an idle connection is kept for the next request."""
MOST_IDLE = 8
"""Idle connections kept at most (one per thread that was waiting for an answer at once)."""


class IdleConnections:
    """The idle connections to one socket, shared by the threads of one client."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._lock = threading.Lock()
        self._idle: list[tuple[float, UnixHTTPConnection]] = []
        # A client dropped with connections still idle closes them (no unclosed socket).
        weakref.finalize(self, _close_all, self._idle)

    def take(self, timeout: float) -> tuple[UnixHTTPConnection, bool]:
        """A connection for one request, and whether it is one kept from before."""
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, conn = self._idle.pop()
                if now - since <= KEEP_IDLE and _still_open(conn):
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn, True
                conn.close()
        return UnixHTTPConnection(self.socket_path, timeout=timeout), False

    def give_back(self, conn: UnixHTTPConnection, resp: http.client.HTTPResponse) -> None:
        """After its answer was read to the end: kept for the next request, unless the answer
        closes it or enough are kept already."""
        if resp.will_close or not resp.isclosed() or conn.sock is None:
            conn.close()
            return
        with self._lock:
            if len(self._idle) < MOST_IDLE:
                self._idle.append((time.monotonic(), conn))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)


def _still_open(conn: UnixHTTPConnection) -> bool:
    """Nothing to read on an idle connection: readable means the daemon closed it (or sent
    what it had no request for), and either way it carries no more requests."""
    if conn.sock is None:
        return False
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return not readable


def _close_all(idle: list[tuple[float, UnixHTTPConnection]]) -> None:
    while idle:
        idle.pop()[1].close()


__all__ = ["KEEP_IDLE", "MOST_IDLE", "IdleConnections"]
