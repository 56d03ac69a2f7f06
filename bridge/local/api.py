"""The local API: HTTP/JSON on the Unix socket, for this party's own systems.

Every error is a 4xx (or 5xx for our own faults) with
``{"error": {"code": ..., "message": ..., "field": ...}}``. Described in schemas/local-api.yaml.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge import __version__
from bridge.core.crypto.identity import check_party
from bridge.core.documents import ACK_STATUSES
from bridge.core.errors import (
    BridgeError,
    InputError,
    QueueFull,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
)
from bridge.engine.exchange import Exchange
from bridge.engine.health import links_verdict, stuck_after
from bridge.engine.metrics import Metrics
from bridge.engine.ports import RunInDb
from bridge.engine.states import ItemTransport
from bridge.engine.store_check import StoreFault, is_corruption
from bridge.local.carry import CARRY_FILE_REFUSALS, CarryApi
from bridge.local.json_text import parse_json
from bridge.local.processing import with_processing
from bridge.local.stream import (
    MAX_STREAM_LINE,
    NDJSON,
    STREAM_TYPES,
    ack_stream,
    submit_stream,
)
from bridge.local.stream_beside import CheckBeside

log = logging.getLogger("bridge.api")
STATUS_BY_CODE = {"unknown_peer": 404, "not_found": 404, "duplicate_document": 409,
                  "ambiguous": 409, "not_inbound": 409, "not_ready": 409, "too_large": 413,
                  "transition_not_allowed": 409, "peer_key_revoked": 409, "stream_stalled": 408,
                  # a carrier file refused whole (PROTOCOL.md §12.4): it is read, but not ours
                  **dict.fromkeys(CARRY_FILE_REFUSALS, 422)}
MAX_LIMIT = 10_000
# What an item's status filter may name: an acknowledgement status, or the transport state of
# an item not yet acknowledged (local-api.yaml, ItemStatus).
ITEM_STATES = (*ACK_STATUSES, *(t.value for t in ItemTransport))
MAX_BODY = web.AppKey("max_body", int)


def error_response(status: int, code: str, message: str, field: str | None = None,
                   problems: tuple[tuple[str | None, str], ...] = ()) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message, "field": field}
    if problems:
        error["problems"] = [{"field": f, "message": m} for f, m in problems]
    return web.json_response({"error": error}, status=status)


@web.middleware
async def errors_middleware(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
    try:
        return await handler(request)
    except QueueFull as err:  # backpressure: nothing was stored; come back later
        resp = error_response(429, err.code, err.detail, err.field)
        resp.headers["Retry-After"] = str(err.retry_after)  # RFC 9110 §10.2.3, seconds
        return resp
    except InputError as err:
        return error_response(STATUS_BY_CODE.get(err.code, 400), err.code, err.detail, err.field,
                              err.problems)
    except StoreUnavailable as err:  # the server's fault (a full disk), not the caller's
        log.error("ALARM: %s", err)
        return error_response(503, err.code, err.message)
    except StoreError as err:  # ours, never the caller's: a 5xx with its code
        return error_response(500, err.code, err.message)
    except BridgeError as err:
        return error_response(400, err.code, err.message)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", "request body too large")
    except web.HTTPException as exc:
        if exc.status >= 400:
            resp = error_response(exc.status, "http", exc.reason)
            if "Allow" in exc.headers:  # 405 must say what is allowed (RFC 9110 §15.5.6)
                resp.headers["Allow"] = exc.headers["Allow"]
            return resp
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the daemon's log")


async def _json_body(request: web.Request) -> Any:
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise InputError("send JSON with Content-Type: application/json", field="$",
                         code="bad_content_type")
    return parse_json(await _read_limited(request), field="$")


async def _read_limited(request: web.Request) -> bytearray:
    """The body, refused past the size limit. Read as a stream rather than with
    ``request.read()``, which keeps its own copy alive for the whole request."""
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise InputError(f"request body over {limit} bytes", field="$", code="too_large")
    buf = bytearray()
    async for chunk in request.content.iter_chunked(1 << 20):
        buf += chunk
        if len(buf) > limit:
            raise InputError(f"request body over {limit} bytes", field="$", code="too_large")
    return buf


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise InputError(f"must be one of {', '.join(allowed)}", field=name)
    return value


def _is_number(raw: str, max_len: int = 18) -> bool:
    """ASCII digits only: ``str.isdigit`` alone is true of "²", on which ``int`` raises (a 500
    where a 400 is due)."""
    return raw.isascii() and raw.isdigit() and 0 < len(raw) <= max_len


def _party(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None:
        check_party(value, field_name=name)
    return value


def _cursor(request: web.Request) -> str | None:
    """An items page's ``after``: the ``next`` of the previous page, an index. Checked here: a
    number past SQLite's 64 bits raised OverflowError deep in the store (a 500)."""
    raw = request.query.get("after")
    if raw and not _is_number(raw):
        raise InputError("must be the 'next' value of a previous page", field="after")
    return raw


def _limit(request: web.Request, default: int) -> int:
    raw = request.query.get("limit", str(default))
    if not _is_number(raw) or not 0 < int(raw) <= MAX_LIMIT:
        raise InputError(f"must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


EVENT_PAGE = 500
"""Events read from the store at a time for one event stream."""
HeldEvents = Callable[[int, int], "list[tuple[int, str, str]] | None"]
"""The events after an id, at most so many, if all of them are held in memory, else None."""


class LocalApi:
    def __init__(self, *, exchange: Exchange, run: RunInDb, metrics: Metrics,
                 events_changed: asyncio.Condition, peer_status: Callable[[], dict[str, Any]],
                 max_body: int, event_writes: Callable[[], int] | None = None,
                 held_events: HeldEvents | None = None,
                 check_beside: CheckBeside | None = None) -> None:
        self.exchange = exchange
        self.run = self._damage_is_ours(run)
        self.metrics = metrics
        self.events_changed = events_changed
        # How many changes so far wrote an event: a stream that read nothing waits only if
        # none came since its read began. None: every change may have (each one is read).
        self.event_writes = event_writes
        # The latest committed events the daemon holds (bridge/daemon/recent.py): a stream up
        # to date with them writes them without reading them back from the store.
        self.held_events = held_events
        self.peer_status = peer_status
        self.max_body = max_body
        self.stopping = asyncio.Event()
        self.reload_peers: Callable[[], Awaitable[None]] | None = None
        # Processes beside the daemon that check a large msgpack stream's batches, if any.
        self.check_beside = check_beside
        # Where the peer endpoint listens (host, the port it got, scheme), once it is bound.
        self.listen: dict[str, Any] | None = None
        # False when the daemon opens no peer endpoint (no TCP port: the relay or the carrier).
        self.listening = True
        # The relay connection's state (connected, reconnecting, its last error), if joined.
        self.relay_status: Callable[[], dict[str, Any]] | None = None

    def _damage_is_ours(self, run: RunInDb) -> RunInDb:
        """SQLite reporting the file damaged, on any call: the alarm, and ``store_corrupt``."""
        async def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await run(fn, *args, **kwargs)
            except Exception as exc:
                if not is_corruption(exc):
                    raise
                await run(self.exchange.store_fault,
                          StoreFault(where="the file", what=f"cannot be read: {exc}"))
                raise StoreCorrupt(f"the store cannot be read: {exc}") from exc
        return guarded

    def app(self) -> web.Application:
        app = web.Application(middlewares=[errors_middleware], client_max_size=self.max_body)
        app[MAX_BODY] = self.max_body
        r = app.router
        r.add_get("/v1/health", self.health)
        r.add_get("/v1/peers", self.peers)
        r.add_post("/v1/documents", self.submit)
        r.add_get("/v1/documents", self.documents)
        r.add_get("/v1/documents/{id}", self.document)
        r.add_get("/v1/documents/{id}/items", self.items)
        r.add_get("/v1/documents/{id}/items/{item_id}", self.item)
        r.add_post("/v1/documents/{id}/acks", self.ack)
        r.add_get("/v1/documents/{id}/receipt", self.receipt)
        r.add_get("/v1/reconcile", self.reconcile)
        r.add_get("/v1/events", self.events)
        r.add_post("/v1/keys/rotate", self.rotate_key)
        r.add_post("/v1/keys/revoke", self.revoke_key)
        r.add_post("/v1/peers/reload", self.reload)
        r.add_get("/metrics", self.prometheus)
        CarryApi(exchange=self.exchange, run=self.run, metrics=self.metrics).add_routes(r)
        return app

    async def health(self, request: web.Request) -> web.Response:
        info = await self.run(self.exchange.health)
        status = self.peer_status()
        for name, p in info["peers"].items():
            p.update(status.get(name) or {"reachable": None})
        # "status" is this daemon's own (the guard's: ok, degraded with its faults named, or
        # store_corrupt, SECURITY.md "A damaged store"); the links to the peers have theirs.
        links = links_verdict(info["peers"], now=self.exchange.now(),
                              after=stuck_after(self.exchange.config.delivery))
        return web.json_response({**info, "version": __version__, "links": links,
                                  **self._doors()})

    def _doors(self) -> dict[str, Any]:
        """Where peers reach this daemon: its peer endpoint (``listen``; null when it opens
        no TCP port at all) and the relay connection (``relay``)."""
        doors: dict[str, Any] = {}
        if self.listen or not self.listening:
            doors["listen"] = self.listen
        if self.relay_status is not None:
            doors["relay"] = self.relay_status()
        return doors

    async def peers(self, request: web.Request) -> web.Response:
        info = await self.run(self.exchange.health)
        status = self.peer_status()
        out = []
        for name, cfg in self.exchange.config.peers.items():
            link = status.get(name) or {"reachable": None}
            queue = info["peers"].get(name) or {"queued": 0}
            out.append({"name": name, "url": cfg.url, "via": cfg.via,
                        "fingerprint": cfg.fingerprint, **link, **queue})
        return web.json_response({"peers": out})

    @with_processing
    async def submit(self, request: web.Request) -> web.Response:
        if request.content_type in STREAM_TYPES:
            result = await submit_stream(request, self.exchange, self.run,
                                         max_line=min(self.max_body, MAX_STREAM_LINE),
                                         beside=self.check_beside)
        else:
            body = await _json_body(request)
            result = await self.run(self.exchange.submit_document, body)
        if result.get("existing"):  # a retry of a committed submission: nothing new queued
            return web.json_response(result, status=200)
        self.metrics.inc("documents_submitted")
        return web.json_response(result, status=202)

    async def documents(self, request: web.Request) -> web.Response:
        page = await self.run(
            self.exchange.documents_page,
            direction=_choice(request, "direction", ("in", "out")),
            type=_choice(request, "type", ("roster", "manifest", "ack")),
            peer=_party(request, "peer"), limit=_limit(request, 1000),
            after=request.query.get("after"))
        return web.json_response(page)

    async def document(self, request: web.Request) -> web.Response:
        out = await self.run(self.exchange.document_detail, request.match_info["id"],
                             _choice(request, "direction", ("in", "out")))
        return web.json_response(out)

    async def items(self, request: web.Request) -> web.Response:
        out = await self.run(
            self.exchange.items, request.match_info["id"],
            direction=_choice(request, "direction", ("in", "out")),
            status=_choice(request, "status", ITEM_STATES), after=_cursor(request),
            limit=_limit(request, 1000))
        return web.json_response(out)

    async def item(self, request: web.Request) -> web.Response:
        out = await self.run(self.exchange.item, request.match_info["id"],
                             request.match_info["item_id"],
                             _choice(request, "direction", ("in", "out")))
        return web.json_response(out)

    @with_processing
    async def ack(self, request: web.Request) -> web.Response:
        if request.content_type == NDJSON:
            out = await ack_stream(request, self.exchange, self.run, request.match_info["id"],
                                   max_line=min(self.max_body, MAX_STREAM_LINE))
        else:
            body = await _json_body(request)
            out = await self.run(self.exchange.acknowledge, request.match_info["id"], body)
        if out["ack_id"] is None:  # every item already says this: nothing signed or queued
            return web.json_response(out, status=200)
        self.metrics.inc("acks_submitted")
        return web.json_response(out, status=202)

    async def receipt(self, request: web.Request) -> web.StreamResponse:
        doc_id, item = request.match_info["id"], request.query.get("item")
        direction = _choice(request, "direction", ("in", "out"))
        if item is not None:
            data = await self.run(self.exchange.receipt, doc_id, item, direction)
            return web.Response(body=data, content_type="application/vnd.bridge.receipt")
        # The whole document's: streamed, a piece at a time from the store, each checked as
        # it goes (bridge/engine/receipt_stream.py). What fails before the first piece is an
        # answer like any other; what fails after it ends the body short of its end, never a
        # whole receipt that does not verify.
        made = await self.run(self.exchange.document_receipt, doc_id, direction)
        piece = await self.run(made.next_piece)
        response = web.StreamResponse()
        response.content_type = "application/vnd.bridge.receipt"
        await response.prepare(request)
        while piece:
            await response.write(piece)
            piece = await self.run(made.next_piece)
        await response.write_eof()
        return response

    @with_processing
    async def reconcile(self, request: web.Request) -> web.Response:
        """The reconciliation report as JSON (bridge.reports.render.json.to_json)."""
        raw = request.query.get("quota")
        if raw is not None and not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 12
                                    and int(raw) > 0):
            raise InputError("must be a positive whole number", field="quota")
        out = await self.run(self.exchange.reconcile, peer=_party(request, "peer"),
                             quota=int(raw) if raw is not None else None)
        return web.json_response(out)

    @with_processing
    async def rotate_key(self, request: web.Request) -> web.Response:
        body = await _json_body(request) if request.can_read_body else {}
        out = await self.run(self.exchange.rotate_key, body)
        return web.json_response(out, status=202)

    @with_processing
    async def revoke_key(self, request: web.Request) -> web.Response:
        body = await _json_body(request) if request.can_read_body else {}
        out = await self.run(self.exchange.revoke_key, body)
        return web.json_response(out, status=202)

    async def reload(self, request: web.Request) -> web.Response:
        if self.reload_peers is not None:
            await self.reload_peers()
        peers = sorted(self.exchange.peers)
        return web.json_response({"peers": peers})

    async def prometheus(self, request: web.Request) -> web.Response:
        try:
            gauges = await self.run(self.exchange.store.counters)
            await self.run(self.exchange.health)  # sets each peer's queue gauges
        except StoreCorrupt:
            # The counters' tables cannot be read: the in-memory metrics still answer, with
            # the store_corrupt alarm among them, for the monitoring that must see it.
            gauges = {}
        text = self.metrics.render(gauges, self.exchange.me.party)
        return web.Response(text=text, content_type="text/plain")

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events from the persistent event log; resumes from Last-Event-ID."""
        query = request.query.get("after") or None
        if query is not None and not _is_number(query):
            raise InputError("must be an event id", field="after")
        raw = request.headers.get("Last-Event-ID") or query
        if raw is not None and not _is_number(raw):
            raise InputError("must be an event id", field="Last-Event-ID")
        last = int(raw) if raw is not None else await self.run(
            self.exchange.store.last_event_id)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        writes = self.event_writes or (lambda: -1)
        held = self.held_events or (lambda last, limit: None)
        pinged = False
        try:
            while not self.stopping.is_set():
                mark = writes()  # taken before the read: a write after it is read again
                # After a quiet spell the store itself: whatever it holds is sent in the end.
                rows = None if pinged else held(last, EVENT_PAGE)
                if rows is None:
                    rows = await self.run(self.exchange.store.events_after, last, EVENT_PAGE)
                pinged = False
                if rows:
                    # One write for what came together: one send, not one per event.
                    await resp.write("".join(f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
                                             for event_id, kind, data in rows).encode())
                    last = rows[-1][0]
                    if self.event_writes is None or len(rows) == EVENT_PAGE:
                        continue  # there may be more: read on
                    # Less than a page: everything there was. Read again only for a write
                    # since ``mark`` (below), not once more after every event sent.
                async with self.events_changed:
                    if mark != writes():
                        continue  # an event came while we read: read again, do not wait
                    try:
                        await asyncio.wait_for(self.events_changed.wait(), timeout=15)
                    except TimeoutError:
                        await resp.write(b": ping\n\n")
                        pinged = True
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
