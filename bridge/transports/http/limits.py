"""The peer endpoint's limits on the HTTP side (bridge/engine/limits.py has the pure parts):

- at most ``max_connections`` connections at once (``ConnectionGuard``, ``GuardedSite``);
- a connection with no request in progress is closed after ``idle_seconds`` (aiohttp's
  keep-alive timer, which also runs from the moment of connecting: a client that never
  finishes its request line and headers is cut off too);
- the request line and each header line at most ``max_header_bytes``, at most ``max_headers``
  headers (aiohttp's parser: 400, counted here from its error log);
- a body must arrive whole within ``body_read_seconds`` and be at most ``max_body_bytes``
  (``read_body``).

Each limit has a metrics counter (README, "Security limits").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from bridge.engine.metrics import Metrics
from bridge.home.config import Limits

log = logging.getLogger("bridge.peer")
http_log = logging.getLogger("bridge.peer.http")

REFUSE_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 27\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
               b"too many connections; retry")


def server_options(limits: Limits, metrics: Metrics) -> dict[str, Any]:
    """Keyword arguments for the peer endpoint's ``web.AppRunner`` (passed to aiohttp's
    request handler for every connection)."""
    logger = logging.getLogger("bridge.peer.aiohttp")
    if not any(isinstance(f, HttpErrorFilter) for f in logger.filters):
        logger.addFilter(HttpErrorFilter(metrics))
    return {
        "keepalive_timeout": limits.idle_seconds,
        "max_line_size": limits.max_header_bytes,
        "max_field_size": limits.max_header_bytes,
        "max_headers": limits.max_headers,
        # After an answer to an unfinished body (413, 408), read and drop what still comes
        # for at most this long so that the client sees the answer, then close.
        "lingering_time": 1.0,
        "logger": logger,
    }


class HttpErrorFilter(logging.Filter):
    """aiohttp logs every malformed request (a header over the limit, too many headers,
    not HTTP at all) with a traceback, at error level: a flood of them would flood the log.
    This counts them in metrics and lets at most one line a second through, without the
    traceback, at warning level."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics
        self._last = 0.0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, LineTooLong) or (
                isinstance(exc, BadHttpMessage) and "headers" in str(exc.message).lower()):
            self.metrics.inc("peer_header_too_large")
        elif exc is not None:
            self.metrics.inc("peer_bad_http")
        now = time.monotonic()
        if now - self._last < 1.0:
            self._dropped += 1
            return False
        self._last = now
        what = (str(getattr(exc, "message", exc)).splitlines() or [""])[0][:120] if exc else ""
        record.msg = f"{record.getMessage()}: {type(exc).__name__ if exc else ''} {what}"
        if self._dropped:
            record.msg += f" ({self._dropped} more such lines left out)"
            self._dropped = 0
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _Counted(asyncio.Protocol):
    """Stands between the transport and aiohttp's request handler for one connection, so that
    the guard knows when the connection closes. Passes every protocol callback through."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard._closed(self)
        self.inner.connection_lost(exc)


class _RefuseBusy(asyncio.Protocol):
    """Over the limit with every connection busy: answer 503 at once and close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSE_BUSY)
        transport.close()


class ConnectionGuard:
    """At most ``limit`` connections to the peer endpoint at once.

    A new connection over the limit takes the place of the oldest connection that has no
    request in progress (an idle keep-alive, or one that never sent a whole request: a
    slowloris); if every connection is busy, it gets 503 and is closed. So a flood of idle
    connections cannot lock out a new request, and one of busy connections is bounded by the
    body deadline. ``middleware`` marks which connections are busy."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self._open: OrderedDict[_Counted, None] = OrderedDict()
        self._busy: dict[object, int] = {}  # aiohttp request handler -> requests in progress
        self._in_progress = 0
        self.peak = 0

    @property
    def open(self) -> int:
        return len(self._open)

    def factory(self, server: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            if len(self._open) >= self.limit and not self._evict_idle():
                self.metrics.inc("peer_connections_refused")
                return _RefuseBusy()
            counted = _Counted(self, server())
            self._open[counted] = None
            self.peak = max(self.peak, len(self._open))
            self._gauges()
            return counted
        return make

    def _evict_idle(self) -> bool:
        # Oldest first. A connection whose transport never came up (a TLS handshake that
        # failed: asyncio then never tells the protocol) has no transport and goes first, at
        # no cost; until then it counts as open.
        for conn in self._open:
            if conn.inner not in self._busy:
                del self._open[conn]
                if conn.transport is not None:
                    conn.transport.close()
                self.metrics.inc("peer_connections_evicted")
                return True
        return False

    def _closed(self, conn: _Counted) -> None:
        self._open.pop(conn, None)
        self._busy.pop(conn.inner, None)
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.set_gauge("peer_connections_open", len(self._open))
        self.metrics.set_gauge("peer_connections_peak", self.peak)

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        conn = request.protocol
        self._busy[conn] = self._busy.get(conn, 0) + 1
        self._in_progress += 1
        self.metrics.set_gauge("peer_requests_in_progress", self._in_progress)
        try:
            return await handler(request)
        finally:
            self._in_progress -= 1
            self.metrics.set_gauge("peer_requests_in_progress", self._in_progress)
            left = self._busy.get(conn, 1) - 1
            if left > 0:
                self._busy[conn] = left
            else:
                self._busy.pop(conn, None)


class GuardedSite(web.BaseSite):
    """aiohttp's TCP site, with every connection passing through a ``ConnectionGuard``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 guard: ConnectionGuard, ssl_context: Any = None, backlog: int = 128) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.factory(server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=True)


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


async def read_body(request: web.Request, *, max_bytes: int, seconds: float) -> bytes:
    """The whole body, or ``BodyTooLarge`` past ``max_bytes`` (at once when the declared
    Content-Length says so), or ``BodyTooSlow`` when it has not all come within ``seconds``
    (a slow sender that never finishes must not hold a connection for ever)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge
    try:
        async with asyncio.timeout(seconds):
            return await read_bounded(request.content, max_bytes)
    except TimeoutError as exc:
        raise BodyTooSlow from exc


async def read_bounded(stream: StreamReader, max_bytes: int,
                       chunk_size: int = 1 << 20) -> bytes:
    """All of ``stream``, or ``BodyTooLarge`` as soon as more than ``max_bytes`` came (what is
    past the limit is never kept). The chunks are kept as they come and joined once at the
    end: one allocation of the exact size, where a growing buffer is reallocated again and
    again (and leaves the allocator holding up to twice the body): peak memory stays about
    twice the body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(chunk_size):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    body = b"".join(chunks)
    chunks.clear()
    return body

__all__ = ["BodyTooLarge", "BodyTooSlow", "ConnectionGuard", "GuardedSite", "read_body",
           "read_bounded", "server_options"]
