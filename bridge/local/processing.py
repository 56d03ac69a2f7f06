"""``102 Processing`` while a long request is at work, for a client that asked for it.

A client's timeout bounds *silence*: no byte for so many seconds. An acknowledgement of every
item of a million-item document, or a large submission, is signed and committed before the
answer can say how it went, and on a loaded host that can take longer than the client waits.
The client then gives up and reports a failure while the daemon finishes the work, and its
retry is answered that nothing changed. So a client that says how long it waits in silence
(``Prefer: processing=SECONDS``, an RFC 7240 preference: a daemon that does not know it
ignores it, §2) is sent an interim ``102 Processing`` (RFC 2518 §10.1; a client MUST be able
to parse 1xx answers before the final one, RFC 9110 §15.2) every third of that while the
request is at work, and the final answer when it is done. A request whose work has stopped
(the daemon's loop hung) sends nothing, and the client gives up after its timeout as before.
A loop that lives while the database thread hangs keeps sending them: so the client gives up
also when interim answers alone have come for ``bridge.client_wire.WORK_AT_MOST`` seconds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

PREFERENCE = "processing"
INTERIM = b"HTTP/1.1 102 Processing\r\n\r\n"
EVERY_AT_MOST = 5.0  # seconds between two interim answers, whatever the client waits
EVERY_AT_LEAST = 0.05  # ... and never more often than this

S = TypeVar("S")
Handler = Callable[[S, web.Request], Awaitable[web.StreamResponse]]


def silence_allowed(request: web.Request) -> float | None:
    """The seconds of silence the client's ``Prefer: processing=N`` allows; None if it did
    not ask (or asked in a form not understood: then it is ignored, RFC 7240 §2)."""
    for field in request.headers.getall("Prefer", ()):
        for preference in field.split(","):
            token, _, value = preference.split(";", 1)[0].strip().partition("=")
            if token.strip().lower() != PREFERENCE:
                continue
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds > 0 else None
    return None


def interim_every(silence: float) -> float:
    """A third of the silence allowed: two interim answers may come late and the third
    still arrives in time."""
    return min(EVERY_AT_MOST, max(EVERY_AT_LEAST, silence / 3))


def with_processing(handler: Handler[S]) -> Handler[S]:
    """``handler`` (one that answers with a whole ``web.Response``: nothing of its answer is
    written before it returns), with interim answers while it works, if asked for."""
    async def wrapped(self: S, request: web.Request) -> web.StreamResponse:
        silence = silence_allowed(request)
        if silence is None:
            return await handler(self, request)
        work = asyncio.ensure_future(handler(self, request))
        try:
            while not (await asyncio.wait({work}, timeout=interim_every(silence)))[0]:
                try:
                    await request.writer.write(INTERIM)
                except (ConnectionError, RuntimeError):
                    break  # the client is gone: the work still ends as it would have
            return await work
        finally:
            work.cancel()  # only if this request itself was cancelled: else it is done
    return wrapped


__all__ = ["INTERIM", "PREFERENCE", "interim_every", "silence_allowed", "with_processing"]
