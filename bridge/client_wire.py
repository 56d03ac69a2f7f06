"""How ``bridge.client`` speaks to the daemon: the Unix-socket connection, the query string
and path segments, and the JSON, NDJSON and msgpack bodies (the standard library only, like
the client, and msgpack when it is installed, as it is wherever the daemon is)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

msgpack: ModuleType | None
try:
    import msgpack
except ImportError:  # a streamed document is then sent as NDJSON
    msgpack = None

HOST = "bridge"  # the Host header; the socket is what selects the daemon
STREAM_BLOCK = 256 * 1024  # bytes of NDJSON lines (or msgpack values) sent at once
NDJSON = "application/x-ndjson"
MSGPACK = "application/vnd.msgpack"
WORK_AT_MOST = 3600.0
"""Seconds a request is waited for while the daemon answers only ``102 Processing``: the
interim answers say its event loop lives, not that the work moves (a database thread that
hangs would keep a client waiting for ever), so past this the client gives up as on a silent
daemon, and says which it was."""


class StillWorking(TimeoutError):
    """The daemon kept answering ``102 Processing`` for longer than ``WORK_AT_MOST``."""


class NoAnswer(http.client.RemoteDisconnected):
    """The connection ended (closed or reset) before a single byte of the answer came: the
    one failure after which a request on a kept connection may be sent again on a new one
    (RFC 9112 §9.3.1, RFC 9110 §9.2.2), if sending it twice does what sending it once does."""


class _Response(http.client.HTTPResponse):
    def begin(self) -> None:
        # Whether any byte of the answer came, told apart before the status line is parsed:
        # ``http.client`` says "closed without response" also for a status line cut short.
        # A timeout is not a closed connection (the daemon may still be at work on it).
        if self.fp is not None and self.headers is None:  # not begun yet
            try:
                seen = self.fp.peek(1)
            except TimeoutError:
                raise
            except OSError as exc:
                raise NoAnswer("the connection was reset before any answer") from exc
            if not seen:
                raise NoAnswer("the connection was closed before any answer")
        super().begin()

    def _read_status(self) -> tuple[str, int, str]:
        # Interim answers are skipped (RFC 9110 §15.2: a client MUST be able to parse one or
        # more 1xx before the final answer): the daemon's 102 Processing while it works
        # (bridge/local/processing.py). ``http.client`` skips only 100 Continue itself. Each
        # is a byte on the socket, so the timeout, which bounds each read, bounds silence.
        began = time.monotonic()
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 < status < 200 and status != 101):
                return version, status, reason
            http.client.parse_headers(self.fp)  # an interim answer's fields: not ours
            if time.monotonic() - began > WORK_AT_MOST:
                raise StillWorking(f"the daemon was still working on the request after "
                                   f"{WORK_AT_MOST:g} s")


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client.HTTPConnection`` that connects to a Unix socket instead of TCP."""

    response_class = _Response

    def __init__(self, socket_path: str, timeout: float | None = None) -> None:
        super().__init__(HOST, timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def send_request(conn: UnixHTTPConnection, method: str, path: str,
                 body: bytes | BinaryIO | Iterable[bytes] | None,
                 hdrs: dict[str, str]) -> http.client.HTTPResponse:
    """``method path`` with ``body`` on ``conn``, and the head of its answer."""
    try:
        try:
            # A body that is not bytes and has no length (a stream) goes chunked
            # (RFC 9112 §7.1); a file sent with its Content-Length does not.
            chunked = (body is not None and not isinstance(body, bytes)
                       and "Content-Length" not in hdrs)
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            # The daemon may have answered early (413 for a body over its limit) and
            # closed: its answer, if it is there, says more than the broken pipe.
            if conn.sock is None:
                raise
        return conn.getresponse()
    except BaseException:
        # A failed request carries no other; and when the body's own iterator failed (a
        # streamed file that cannot be read on), the request is cut off unfinished, so
        # the daemon drops what it staged at once.
        conn.close()
        raise


def unavailable_message(exc: BaseException, socket_path: str, timeout: float
                        ) -> tuple[str, bool]:
    """What ``exc`` on the way to the daemon says to the user, and whether the daemon was
    reached (a timeout, a hang-up: it may have acted on the request)."""
    start = f"start it with: bridge --home {home_of(socket_path)} daemon"
    if isinstance(exc, FileNotFoundError):
        return f"no Bridge daemon is running (no socket at {socket_path}); {start}", False
    if isinstance(exc, ConnectionRefusedError):
        return (f"no Bridge daemon is listening on {socket_path} (stale socket?); {start}",
                False)
    if isinstance(exc, PermissionError):
        return (f"permission denied on {socket_path}: the socket belongs to another user; run "
                "as the user who runs the daemon", False)
    if isinstance(exc, StillWorking):
        return (f"the Bridge daemon on {socket_path} answered only that it was still working "
                f"for more than {WORK_AT_MOST:g} s; see its log", True)
    if isinstance(exc, TimeoutError):
        return (f"the Bridge daemon on {socket_path} did not answer within {timeout:g} s",
                True)
    if isinstance(exc, OSError) and "too long" in str(exc).lower():
        return (f"socket path {socket_path} is too long for a Unix socket (about 107 bytes at "
                "most); use a shorter home path", False)
    return f"lost the connection to the Bridge daemon on {socket_path} ({exc})", True


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After's delay-seconds (RFC 9110 §10.2.3); None for none, or an HTTP-date."""
    if value is None or not (value.isascii() and value.strip().isdigit()):
        return None
    return float(min(int(value), 3600))


def statement(item: Mapping[str, Any]) -> dict[str, Any]:
    """An acknowledged item as the API takes it: its fields that are set."""
    return {k: v for k, v in dict(item).items() if v is not None}


# One encoder for every body and line: ``json.dumps`` with options builds a new one per call.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: object) -> bytes:
    return ENCODER.encode(value).encode()


def _json_line(value: object) -> bytes:
    return ENCODER.encode(value).encode() + b"\n"


def _blocks(header: Mapping[str, Any], items: Iterable[Mapping[str, Any]],
            encode: Callable[[Any], bytes]) -> Iterator[bytes]:
    """The header and the items, each ``encode``d, in blocks of about ``STREAM_BLOCK`` bytes."""
    block = bytearray(encode(header))
    for item in items:
        block += encode(item)
        if len(block) >= STREAM_BLOCK:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)


def ndjson_blocks(header: Mapping[str, Any], items: Iterable[Mapping[str, Any]]
                   ) -> Iterator[bytes]:
    """The header and the items as JSON lines."""
    return _blocks(header, items, _json_line)


def msgpack_blocks(header: Mapping[str, Any], items: Iterable[Mapping[str, Any]]
                   ) -> Iterator[bytes]:
    """The header and the items as msgpack values one after another: several times cheaper
    to write and to read than JSON lines."""
    assert msgpack is not None
    return _blocks(header, items, msgpack.Packer().pack)


def document_stream(header: Mapping[str, Any], items: Iterable[Mapping[str, Any]]
                    ) -> tuple[str, Iterator[bytes]]:
    """A streamed document's content type and body: msgpack when it is installed, else NDJSON
    (the daemon reads both)."""
    if msgpack is None:
        return NDJSON, ndjson_blocks(header, items)
    return MSGPACK, msgpack_blocks(header, items)


def home_of(socket_path: str) -> str:
    return os.path.dirname(socket_path) or "."


def query(params: Mapping[str, object | None]) -> str:
    clean = {k: str(v) for k, v in params.items() if v is not None}
    return "?" + urlencode(clean) if clean else ""


def segment(value: str) -> str:
    """One path segment, with '/' and everything else outside the unreserved set escaped."""
    return quote(value, safe="")


__all__ = ["ENCODER", "HOST", "MSGPACK", "NDJSON", "STREAM_BLOCK", "WORK_AT_MOST",
           "NoAnswer", "StillWorking", "UnixHTTPConnection", "copy_body",
           "document_stream", "home_of", "json_text", "msgpack_blocks", "ndjson_blocks",
           "query", "retry_after_seconds", "segment", "send_request", "statement",
           "unavailable_message"]


def copy_body(resp: http.client.HTTPResponse, write: Callable[[bytes], None]) -> bytes:
    """A response's body handed to ``write`` a megabyte at a time; nothing kept (b"")."""
    while piece := resp.read(1 << 20):
        write(piece)
    return b""
