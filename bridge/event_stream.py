"""Server-sent events as the local API's ``/v1/events`` streams them, read line by line from
an HTTP response (``bridge.client.BridgeClient.events``)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

_LINE_SPLIT = re.compile(rb"\r\n|\r|\n")


class Event(NamedTuple):
    """One server-sent event. ``id`` is the text of its ``id:`` line (None if it had none)."""

    id: str | None
    type: str
    data: dict[str, Any]



def response_lines(resp: http.client.HTTPResponse,
                   unavailable: Callable[[BaseException], Exception]) -> Iterator[str]:
    """Decoded lines from a streaming response (chunked or not), without their line ends
    (CRLF, LF or CR). A read that fails raises what ``unavailable`` makes of it."""
    pending = b""
    while True:
        try:
            raw = resp.readline(1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            raise unavailable(exc) from exc
        if not raw:
            rest = _LINE_SPLIT.split(pending) if pending else []
            if len(rest) > 1:
                rest.pop()
            for part in rest:
                yield part.decode("utf-8", "replace")
            return
        buf = pending + raw
        # A final CR may be the first half of a CRLF cut by the read limit: hold it back.
        hold = b"\r" if buf.endswith(b"\r") else b""
        parts = _LINE_SPLIT.split(buf[: len(buf) - len(hold)])
        pending = parts.pop() + hold  # what follows the last line end: an unfinished line
        for part in parts:
            yield part.decode("utf-8", "replace")


def parse_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Server-sent events from lines (WHATWG HTML, "Interpreting an event stream"): ``data``
    lines are joined with newlines, comments (``:``) and unknown fields are ignored, a blank line
    dispatches, an event without data is dropped. The data is parsed as JSON; a JSON value that
    is not an object comes as ``{"value": v}``, text that is not JSON as ``{"raw": text}``."""
    event_type = ""
    data: list[str] = []
    last_id: str | None = None
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = {"raw": text}
                if not isinstance(value, dict):
                    value = {"value": value}
                yield Event(last_id, event_type or "message", value)
            event_type, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, sep, val = line.partition(":")
        if sep and val.startswith(" "):
            val = val[1:]
        if name == "data":
            data.append(val)
        elif name == "event":
            event_type = val
        elif name == "id" and "\x00" not in val:
            last_id = val
