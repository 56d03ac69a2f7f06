"""A synchronous client for a Bridge daemon's local API (HTTP/JSON over its Unix socket).

Standard library only, so that integrators can vendor it::

    from bridge.client import BridgeClient
    c = BridgeClient("/srv/bridge/bridge.sock")
    doc = c.submit_document("roster", "bravo", [{"id": "r-1", "name": "Sample Person"}])
    for ev in c.events():
        print(ev.id, ev.type, ev.data)

A request reuses a connection an earlier one left idle if the daemon has not closed it
(``bridge.client_idle``); the event stream and a carrier export have their own. One the daemon
closes as a request goes out, before any byte of the answer, fails an idempotent request (a
GET, a submission with its id, a reload of the peers) over to a new connection, once; any other
raises :class:`DaemonUnavailable` saying it may or may not have been taken (an acknowledgement
is safe to repeat, but a repeat answers that it changed nothing). A 4xx/5xx answer raises
:class:`ApiError`; a daemon that is not running (no socket, refused connection) or stops
answering raises :class:`DaemonUnavailable`. A submission or acknowledgement refused
because the peer's queue is full (429 ``queue_full``: nothing was stored) is tried again after
the daemon's ``Retry-After``, a bounded number of times (``busy_tries``, ``busy_wait``), then
raised. ``timeout`` bounds silence, not work: the daemon is asked to send 102 Processing while
it works on a long request (``bridge/local/processing.py``), and gives up if it keeps
answering only that for more than ``client_wire.WORK_AT_MOST`` seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, BinaryIO, TypeVar

from bridge.client_idle import IdleConnections
from bridge.client_wire import (
    NDJSON,
    NoAnswer,
    UnixHTTPConnection,
    copy_body,
    send_request,
    unavailable_message,
)
from bridge.client_wire import document_stream as _document_stream
from bridge.client_wire import json_text as _json_text
from bridge.client_wire import ndjson_blocks as _ndjson_blocks
from bridge.client_wire import query as _query
from bridge.client_wire import retry_after_seconds as _seconds
from bridge.client_wire import segment as _seg
from bridge.client_wire import statement as _statement
from bridge.core.errors import BridgeError, UsageError
from bridge.event_stream import Event, parse_sse, response_lines

API_PREFIX = "/v1"
MAX_ERROR_BODY = 64 * 1024
MAX_PROBLEMS = 100  # problems of one answer kept (the daemon lists at most as many)
CARRY_TYPE = "application/vnd.bridge.carry"  # a carrier file (PROTOCOL.md §12)
CARRY_TIMEOUT = 600.0  # a large carrier file is applied before the daemon answers
STREAM_FROM = 10_000  # documents of more items are submitted as a stream
BUSY_TRIES = 5  # tries in all of a request refused with 429 (the peer's queue is full) ...
BUSY_WAIT = 120.0  # ... waiting at most this many seconds in all
T = TypeVar("T")


class ApiError(BridgeError):
    """The daemon answered with a 4xx/5xx: ``status``, ``code``, ``message`` and ``field``
    (a JSON path such as ``items[3].id``, or None)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 problems: tuple[tuple[str | None, str], ...] = (),
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.detail = message  # the same as ``message``, as on ``InputError``
        self.field = field
        self.problems = problems  # every (field, message) when the daemon found several
        self.retry_after = retry_after  # seconds, from a 429's or 503's Retry-After

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __repr__(self) -> str:
        return (f"ApiError(status={self.status!r}, code={self.code!r}, "
                f"message={self.detail!r}, field={self.field!r})")


class DaemonUnavailable(BridgeError):
    """No daemon answers on the socket (missing, refused, timed out, or hung up).

    ``reached`` is True when the connection was made and then failed (timeout, hang-up): the
    daemon may have acted on the request. Retry a submission with the same document id."""

    code = "daemon_unavailable"

    def __init__(self, message: str, *, reached: bool = False) -> None:
        super().__init__(message)
        self.reached = reached


class BridgeClient:
    """Talks to one daemon through its Unix socket. Thread-safe: a connection serves one
    request at a time, and goes back to the idle ones only once its answer is read."""

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = 30, *,
                 busy_tries: int = BUSY_TRIES, busy_wait: float = BUSY_WAIT) -> None:
        self.socket_path = os.fspath(socket_path)
        self.timeout = timeout
        self.busy_tries = max(1, busy_tries)
        self.busy_wait = busy_wait
        self._idle = IdleConnections(self.socket_path)

    def __repr__(self) -> str:
        return f"BridgeClient({self.socket_path!r})"

    # -- transport -------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException, *, unsure: bool = False) -> DaemonUnavailable:
        """``unsure``: a request that changes something, which is not sent again by itself."""
        msg, reached = unavailable_message(exc, self.socket_path, self.timeout)
        if reached and unsure:
            msg += ("; the request may or may not have been taken: look at what the daemon "
                    "holds before sending it again")
        err = DaemonUnavailable(msg, reached=reached)
        err.__cause__ = exc
        return err

    def _open(self, method: str, path: str,
              body: bytes | BinaryIO | Iterable[bytes] | None = None,
              headers: Mapping[str, str] | None = None,
              timeout: float | None = None, *, reuse: bool = False, again: bool = False
              ) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        """The answer's head. ``reuse``: on a connection kept from before, if one is idle;
        ``again``: sending the request twice does what sending it once does."""
        wait = self.timeout if timeout is None else timeout
        conn, kept = (self._idle.take(wait) if reuse
                      else (UnixHTTPConnection(self.socket_path, wait), False))
        hdrs = {"Accept": "application/json"}
        if wait is not None:  # 102 Processing while a long request works (RFC 7240 §2)
            hdrs["Prefer"] = f"processing={wait:g}"
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            try:
                return conn, send_request(conn, method, path, body, hdrs)
            except NoAnswer:
                # The daemon closed the kept connection as the request went out (its idle
                # timer, a restart): nothing of it was answered. RFC 9112 §9.3.1 and RFC 9110
                # §9.2.2: such a request may be sent once more on a new connection if it is
                # idempotent, and its body can be sent again.
                if not (kept and again and (body is None or isinstance(body, bytes))):
                    raise
            conn = UnixHTTPConnection(self.socket_path, wait)
            return conn, send_request(conn, method, path, body, hdrs)
        except (OSError, http.client.HTTPException) as exc:
            raise self._unavailable(exc, unsure=not again and method != "GET") from exc

    @staticmethod
    def _api_error(status: int, reason: str, raw: bytes) -> ApiError:
        try:
            err = json.loads(raw)["error"]
            code = str(err["code"])
            message = str(err.get("message") or code)
            field = err.get("field")
            problems = tuple(
                (None if p.get("field") is None else str(p["field"]), str(p.get("message")))
                for p in err.get("problems") or () if isinstance(p, dict))
            return ApiError(status, code, message, None if field is None else str(field),
                            problems[:MAX_PROBLEMS])
        except (ValueError, KeyError, TypeError, AttributeError):
            text = raw[:500].decode("utf-8", "replace").strip()
            return ApiError(status, f"http_{status}", text or reason or f"HTTP {status}")

    def _raw(self, method: str, path: str,
             body: bytes | BinaryIO | Iterable[bytes] | None = None,
             accept: str = "application/json", headers: Mapping[str, str] | None = None,
             timeout: float | None = None, content_type: str = "application/json",
             write: Callable[[bytes], None] | None = None, again: bool = False
             ) -> tuple[int, str, bytes]:
        """``again``: the request is idempotent (a GET is), so sent once more on a new
        connection when a kept one was closed under it (``_open``)."""
        hdrs = {"Accept": accept}
        if body is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        conn, resp = self._open(method, path, body, hdrs, timeout=timeout, reuse=True,
                                again=again or method == "GET")
        try:
            data = resp.read() if write is None or resp.status >= 400 else copy_body(resp, write)
        except BaseException as exc:
            conn.close()  # half read: it carries no other request
            if isinstance(exc, OSError | http.client.HTTPException):
                raise self._unavailable(exc) from exc
            raise
        self._idle.give_back(conn, resp)
        if resp.status >= 400:
            err = self._api_error(resp.status, resp.reason, data[:MAX_ERROR_BODY])
            err.retry_after = _seconds(resp.getheader("Retry-After"))
            raise err
        return resp.status, resp.getheader("Content-Type", ""), data

    def _busy(self, call: Callable[[], T]) -> T:
        """``call``, tried again after the daemon's Retry-After while it answers 429 (the
        peer's queue is full: nothing was stored, so trying again is safe), at most
        ``busy_tries`` times and ``busy_wait`` seconds in all."""
        waited = 0.0
        for tried in range(1, self.busy_tries + 1):
            try:
                return call()
            except ApiError as err:
                wait = err.retry_after if err.retry_after is not None else 1.0
                if err.status != 429 or tried == self.busy_tries \
                        or waited + wait > self.busy_wait:
                    if err.status == 429 and tried > 1:
                        raise ApiError(429, err.code, f"{err.detail} (tried {tried} times over "
                                       f"{waited:.0f} s; the peer's queue did not drain)",
                                       err.field, err.problems, err.retry_after) from err
                    raise
            time.sleep(wait)
            waited += wait
        raise AssertionError("unreachable: the last try returns or raises")

    def _json(self, method: str, path: str, payload: object | None = None, *,
              stream: Iterable[bytes] | None = None, raw: bytes | None = None,
              stream_type: str = NDJSON, again: bool = False) -> dict[str, Any]:
        """``payload`` as a JSON body (or ``raw``, its text), or ``stream`` as a chunked
        one (NDJSON, or ``stream_type``)."""
        body: bytes | Iterable[bytes] | None = stream if raw is None else raw
        if body is None and payload is not None:
            body = _json_text(payload)
        status, _ctype, data = self._raw(
            method, path, body,
            content_type=stream_type if stream is not None else "application/json",
            again=again)
        return self._object(status, method, path, data)

    @staticmethod
    def _object(status: int, method: str, path: str, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise ApiError(status, "invalid_response",
                           f"the daemon's answer to {method} {path} is not JSON") from exc
        if not isinstance(value, dict):
            raise ApiError(status, "invalid_response",
                           f"the daemon's answer to {method} {path} is not a JSON object")
        return value

    # -- API -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", f"{API_PREFIX}/health")

    def peers(self) -> list[dict[str, Any]]:
        peers: list[dict[str, Any]] = self._json("GET", f"{API_PREFIX}/peers")["peers"]
        return peers

    def submit_document(self, type: str, to: str, items: Iterable[Mapping[str, Any]],
                        meta: Mapping[str, Any] | None = None,
                        id: str | None = None) -> dict[str, Any]:
        """Hand a roster or manifest to the daemon. The answer (202) means it is durably
        committed. Giving ``id`` makes a retry after a lost answer safe: the same id with the
        same content answers with the committed document (200, ``"existing": true``); the same
        id with other content is refused with ``duplicate_document``."""
        if isinstance(items, Sized) and len(items) > STREAM_FROM:
            # Large: as a stream (no body-size limit; the daemon never holds it whole).
            return self.submit_document_stream(type, to, items, count=len(items), meta=meta,
                                               id=id)
        body: dict[str, Any] = {"type": type, "to": to, "items": list(items)}
        if id is not None:
            body["id"] = id
        if meta is not None:
            body["meta"] = dict(meta)
        data = _json_text(body)
        # With its id, a repeat answers with the committed document (200, "existing"): safe
        # to send again by itself. Without one, a repeat would be a second document.
        return self._busy(lambda: self._json("POST", f"{API_PREFIX}/documents", raw=data,
                                             again=id is not None))

    def submit_document_stream(self, type: str, to: str, items: Iterable[Mapping[str, Any]],
                               *, count: int, meta: Mapping[str, Any] | None = None,
                               id: str | None = None) -> dict[str, Any]:
        """``submit_document`` as a stream (chunked): the header, then ``count`` items, one
        msgpack value each (``application/vnd.msgpack``; one JSON line each,
        ``application/x-ndjson``, where msgpack is not installed), read from ``items`` as they
        are sent (an iterator over a file is never held whole). The daemon commits the
        document once the last item is in, and only if every one is good; the answer is
        ``submit_document``'s.
        Refused because the peer's queue is full, it is sent again only if ``items`` can be
        read again (a sequence, or any iterable that is not an iterator).
        """
        header: dict[str, Any] = {"type": type, "to": to, "count": count}
        if id is not None:
            header["id"] = id
        if meta is not None:
            header["meta"] = dict(meta)

        def send() -> dict[str, Any]:
            stream_type, blocks = _document_stream(header, items)
            return self._json("POST", f"{API_PREFIX}/documents", stream=blocks,
                              stream_type=stream_type)
        return send() if isinstance(items, Iterator) else self._busy(send)

    def documents(self, direction: str | None = None, type: str | None = None,
                  peer: str | None = None, limit: int | None = None,
                  after: str | None = None) -> list[dict[str, Any]]:
        q = _query({"direction": direction, "type": type, "peer": peer, "limit": limit,
                    "after": after})
        docs: list[dict[str, Any]] = self._json("GET", f"{API_PREFIX}/documents{q}")["documents"]
        return docs

    def documents_page(self, direction: str | None = None, type: str | None = None,
                       peer: str | None = None, limit: int | None = None,
                       after: str | None = None) -> dict[str, Any]:
        """One page: ``{"documents": [...], "next": str | None}``, newest first; pass
        ``next`` as ``after`` for the page after it."""
        q = _query({"direction": direction, "type": type, "peer": peer, "limit": limit,
                    "after": after})
        return self._json("GET", f"{API_PREFIX}/documents{q}")

    def iter_documents(self, direction: str | None = None, type: str | None = None,
                       peer: str | None = None, page_size: int | None = None
                       ) -> Iterator[dict[str, Any]]:
        """Every document, newest first, page after page (each listed once, whatever ids
        they share)."""
        after: str | None = None
        while True:
            page = self.documents_page(direction, type, peer, page_size, after)
            yield from page.get("documents", [])
            nxt = page.get("next")
            if not nxt or nxt == after:
                return
            after = str(nxt)

    def document(self, id: str, direction: str | None = None) -> dict[str, Any]:
        q = _query({"direction": direction})
        return self._json("GET", f"{API_PREFIX}/documents/{_seg(id)}{q}")

    def items(self, id: str, status: str | None = None, after: str | None = None,
              limit: int | None = None, direction: str | None = None) -> dict[str, Any]:
        """One page: ``{"items": [...], "next": str | None}``. ``direction`` is needed only
        when the id exists both as sent and as received."""
        q = _query({"status": status, "after": after, "limit": limit, "direction": direction})
        return self._json("GET", f"{API_PREFIX}/documents/{_seg(id)}/items{q}")

    def iter_items(self, id: str, status: str | None = None, page_size: int | None = None,
                   direction: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item, page after page."""
        after: str | None = None
        while True:
            page = self.items(id, status=status, after=after, limit=page_size,
                              direction=direction)
            yield from page.get("items", [])
            nxt = page.get("next")
            if not nxt or nxt == after:
                return
            after = str(nxt)

    def item(self, id: str, item_id: str, direction: str | None = None) -> dict[str, Any]:
        q = _query({"direction": direction})
        return self._json("GET",
                          f"{API_PREFIX}/documents/{_seg(id)}/items/{_seg(item_id)}{q}")

    def acknowledge(self, id: str, items: Iterable[Mapping[str, Any]] | None = None,
                    all: str | None = None, reason: str | None = None,
                    including: Iterable[str] = ()) -> dict[str, Any]:
        """Acknowledge items of a received document: either ``items`` (each
        ``{"id", "status", "reason"?, "evidence"?}``) or ``all=STATUS`` (with an optional
        ``reason``) for every item not yet acknowledged — and also for the items whose status
        is in ``including``. Safe to retry: an item already saying exactly this is left as it
        is, and a call that changes nothing answers ``{"ack_id": None, "items": 0}``. The
        answer's ``changed`` counts the items changed by their previous status."""
        if (items is None) == (all is None):
            raise UsageError("acknowledge either some items or all of them, not both or neither")
        body: dict[str, Any]
        including = list(including)
        if all is not None:
            body = {"all": all}
            if reason is not None:
                body["reason"] = reason
            if including:
                body["including"] = including
        else:
            if reason is not None:
                raise UsageError("with items, give each item its own reason")
            if including:
                raise UsageError("including goes with all")
            assert items is not None
            if not isinstance(items, Sized) or len(items) > STREAM_FROM:
                # Large (or read as it goes): as a stream, never one body held whole.
                return self.acknowledge_stream(id, items)
            body = {"items": [_statement(it) for it in items]}
        data = _json_text(body)
        return self._busy(lambda: self._json("POST", f"{API_PREFIX}/documents/{_seg(id)}/acks",
                                             raw=data))

    def acknowledge_stream(self, id: str, items: Iterable[Mapping[str, Any]]
                           ) -> dict[str, Any]:
        """``acknowledge`` of listed ``items`` as a stream (``application/x-ndjson``,
        chunked): a header line, then one item a line, read from ``items`` as they are sent.
        The daemon signs and commits the acknowledgement once the last item is in, and only
        if every one is good (a bad one is named ``items[n]``, n counted from 0); the answer
        is ``acknowledge``'s."""
        return self._json("POST", f"{API_PREFIX}/documents/{_seg(id)}/acks",
                          stream=_ndjson_blocks({}, (_statement(it) for it in items)))

    def receipt(self, id: str, item: str | None = None, direction: str | None = None) -> bytes:
        """A receipt bundle (bytes for ``bridge verify``): one item's, or the whole document's."""
        q = _query({"item": item, "direction": direction})
        _status, _ctype, data = self._raw("GET", f"{API_PREFIX}/documents/{_seg(id)}/receipt{q}",
                                          accept="application/vnd.bridge.receipt")
        return data

    def receipt_to(self, write: Callable[[bytes], None], id: str, item: str | None = None,
                   direction: str | None = None) -> None:
        """``receipt`` handed to ``write`` as it arrives: a whole document's need not fit in
        memory, and one cut short raises (``write_file_streamed`` then keeps no file)."""
        q = _query({"item": item, "direction": direction})
        self._raw("GET", f"{API_PREFIX}/documents/{_seg(id)}/receipt{q}",
                  accept="application/vnd.bridge.receipt", write=write)

    def rotate_key(self, suite: int | None = None) -> dict[str, Any]:
        """Planned key rotation, announced to every peer; ``suite=2`` moves to suite 2."""
        return self._json("POST", f"{API_PREFIX}/keys/rotate",
                          {} if suite is None else {"suite": suite})

    def revoke_key(self, since: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Revoke the current key (compromised) and change to new keys."""
        body = {k: v for k, v in (("since", since), ("reason", reason)) if v is not None}
        return self._json("POST", f"{API_PREFIX}/keys/revoke", body)

    def reload_peers(self) -> dict[str, Any]:
        """Re-read the pinned peers (after ``bridge peer add --replace``)."""
        return self._json("POST", f"{API_PREFIX}/peers/reload", {}, again=True)

    def reconcile(self, peer: str | None = None, quota: int | None = None) -> dict[str, Any]:
        """The reconciliation report (JSON form; ``bridge.reports.render.json.from_json`` reads
        it back): per side and category, per manifest, parity and quotas. ``quota``: an
        agreement-level quota a side."""
        return self._json("GET", f"{API_PREFIX}/reconcile{_query({'peer': peer, 'quota': quota})}")

    def carry_export(self, peer: str, write: Callable[[bytes], None],
                     timeout: float = CARRY_TIMEOUT) -> int:
        """Our envelopes to ``peer`` not yet answered, as one carrier file (PROTOCOL.md §12),
        handed to ``write`` piece by piece as the daemon streams it. Returns how many
        envelopes were pending (the file holds them all, or the first 100,000)."""
        conn, resp = self._open("POST", f"{API_PREFIX}/carry/{_seg(peer)}/export", b"{}",
                                {"Accept": CARRY_TYPE}, timeout=timeout)
        try:
            if resp.status >= 400:
                raise self._api_error(resp.status, resp.reason, resp.read(MAX_ERROR_BODY))
            while chunk := resp.read(1 << 16):
                write(chunk)
            return int(resp.getheader("Bridge-Carry-Pending", "0") or 0)
        except (OSError, http.client.HTTPException) as exc:
            raise self._unavailable(exc) from exc
        finally:
            conn.close()

    def carry_import(self, file: BinaryIO, size: int, kind: str = "envelopes",
                     timeout: float = CARRY_TIMEOUT) -> dict[str, Any]:
        """Apply a carrier file (``kind``: envelopes, or answers to ours), read from ``file``
        (``size`` bytes) as it is sent. The answer names what became of every record, and for
        envelopes holds the receipts file to carry back (``receipts``, base64)."""
        path = f"{API_PREFIX}/carry/import{_query({'kind': kind})}"
        status, _ctype, data = self._raw(
            "POST", path, file, headers={"Content-Type": CARRY_TYPE,
                                         "Content-Length": str(size)}, timeout=timeout)
        return self._object(status, "POST", path, data)

    def metrics(self) -> str:
        _status, _ctype, data = self._raw("GET", "/metrics", accept="text/plain")
        return data.decode("utf-8", "replace")

    def events(self, last_event_id: str | int | None = None, *,
               read_timeout: float | None = None) -> Iterator[Event]:
        """The daemon's server-sent events, as they come, until the daemon ends the stream.

        ``last_event_id`` resumes after that event (the ``Last-Event-ID`` header).
        ``read_timeout`` bounds the wait for the next line (the daemon's ``: ping`` comments
        count); None waits for ever. Closing the iterator closes the connection.
        """
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn, resp = self._open("GET", f"{API_PREFIX}/events", None, headers,
                                timeout=self.timeout)
        try:
            if resp.status >= 400:
                raise self._api_error(resp.status, resp.reason, resp.read(MAX_ERROR_BODY))
            if conn.sock is not None:
                conn.sock.settimeout(read_timeout)
            yield from parse_sse(response_lines(resp, self._unavailable))
        finally:
            conn.close()


__all__ = ["ApiError", "BridgeClient", "DaemonUnavailable", "Event", "UnixHTTPConnection",
           "parse_sse"]
