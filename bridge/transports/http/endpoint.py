"""The peer endpoint: the HTTP endpoint other bridges POST envelopes to.

It only translates: HTTP limits and refusals before anything costs cryptography or database
work, then the body to the engine (``Exchange.receive_envelope``), and the engine's outcome to
an HTTP status (``HTTP_STATUS``) carrying the signed transport answer (PROTOCOL.md §8.3). Our
own envelopes go out through the HTTP courier (``bridge.transports.http.courier``).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web

from bridge.core.errors import PeerError
from bridge.engine.chunk_ahead import Ahead
from bridge.engine.exchange import Exchange
from bridge.engine.inbound import Parsed, decode_envelope
from bridge.engine.limits import RateLimiter, claimed
from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import Answer, Outcome
from bridge.engine.ports import RunInDb
from bridge.home.config import Limits
from bridge.transports.ahead import PrepareBeside, ahead_of_turn
from bridge.transports.http.limits import (
    BodyTooLarge,
    BodyTooSlow,
    ConnectionGuard,
    read_body,
)
from bridge.transports.http.reorder import Reorder

log = logging.getLogger("bridge.peer")
ENVELOPE_TYPE = "application/vnd.bridge.envelope"
ANSWER_TYPE = "application/vnd.bridge.transport-answer"
# The HTTP status that carries each outcome of an envelope we received (PROTOCOL.md §8.3):
# a decision (taken, a duplicate, content refused) is 200; a rejection says why by its class.
HTTP_STATUS: dict[Outcome, int] = {
    Outcome.ACCEPTED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.REFUSED: 200,
    Outcome.MALFORMED: 400,
    Outcome.UNAUTHENTICATED: 403,
    Outcome.OUT_OF_SEQUENCE: 409,
    Outcome.UNAVAILABLE: 503,
}
assert set(HTTP_STATUS) == set(Outcome)


async def _refuse(exchange: Exchange, run: RunInDb, metrics: Metrics, status: int, reason: str,
                  text: str, source: str, *, close: bool = False,
                  headers: dict[str, str] | None = None) -> web.Response:
    """A request refused at one of the HTTP layer's limits, with no signed answer."""
    metrics.inc(f"peer_{reason}")
    # At most one write a second per source and reason (a flood over a limit must not
    # become a flood of transactions); the store keeps one row per hour with the count.
    admitted = exchange.refusal_gate.admit(("limit", source, reason))
    if admitted is not None:
        detail = f"{text}; {source}" + (f" ({admitted.note})" if admitted.note else "")
        log.warning("refused a request: %s", detail)
        await run(exchange.record_limit_refusal, reason=reason, detail=detail,
                  count=admitted.count, source=source)
    resp = web.Response(status=status, text=text, headers=headers)
    if close:
        resp.force_close()
    return resp


INLINE_DECODE_BYTES = 64 * 1024
"""Bodies up to this size are decoded on the event loop itself (``_decoded``)."""


async def _decoded(body: bytes) -> Parsed | PeerError:
    """The envelope's header decoded, beside the database thread, never on it. Decoding what
    a stranger sent is bounded by the outer value's shape (PROTOCOL.md §2.4, §5.1); only the
    copy of its bins grows with the body. A small body (a one-item document, an
    acknowledgement, a checkpoint) costs a fraction of a millisecond on the loop, less than
    the hop to an executor thread and back (both hold the same GIL) that would otherwise be on
    every round trip's path; a large one goes to the executor, so that copying it never holds
    the loop."""
    if len(body) <= INLINE_DECODE_BYTES:
        return decode_envelope(body)
    return await asyncio.get_running_loop().run_in_executor(None, decode_envelope, body)


async def _decide(exchange: Exchange, run: RunInDb, reorder: Reorder, body: bytes,
                  parsed: Parsed | PeerError, ahead: Ahead | None = None) -> Answer:
    """The engine's answer to ``body``, in its sender's sequence order where it can be: one
    that overtook an earlier one on another connection waits for it (PROTOCOL.md §8.7).
    ``ahead``: its chunk prepared beside the database thread (``transports.ahead``)."""
    claim = None if isinstance(parsed, PeerError) else (parsed[0].sender, parsed[0].seq)
    if claim is None or claim[0] not in exchange.peers:
        return await run(exchange.receive_envelope, body, parsed)  # type: ignore[no-any-return]
    await reorder.turn(*claim, len(body))
    deciding = asyncio.ensure_future(run(exchange.receive_envelope, body, parsed, ahead))
    await asyncio.sleep(0)  # its first step hands it to the database thread, in turn
    await reorder.handed(*claim)  # the next may go
    answer: Answer = await deciding
    if answer.outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.REFUSED):
        await reorder.decided(*claim)
    return answer


def peer_app(exchange: Exchange, run: RunInDb, metrics: Metrics, max_body: int,
             limits: Limits | None = None, guard: ConnectionGuard | None = None,
             beside: PrepareBeside | None = None) -> web.Application:
    """The peer endpoint. Before an envelope costs any cryptography or database work it must
    have the envelope content type, arrive whole in time and within the size limit, and fit
    its sender's rate (bridge/transports/http/limits.py, bridge/engine/limits.py). Those
    refusals carry no signed answer: they are the HTTP layer's, and a flood must not make us
    sign. ``beside``: where a large chunk's pure work is done while it waits for its turn."""
    limits = limits or Limits()
    rate = RateLimiter(rate=limits.requests_per_second, burst=limits.burst)
    reorder = Reorder(on_hold=lambda: metrics.inc("envelopes_held"))

    refuse = functools.partial(_refuse, exchange, run, metrics)

    async def post_envelope(request: web.Request) -> web.Response:
        address = f"address {request.remote or 'unknown'}"
        if request.content_type != ENVELOPE_TYPE:
            return await refuse(415, "wrong_content_type", f"send {ENVELOPE_TYPE}", address,
                                close=True)
        try:
            body = await read_body(request, max_bytes=max_body,
                                   seconds=limits.body_read_seconds)
        except BodyTooLarge:
            metrics.inc("envelopes_rejected")
            return await refuse(413, "too_large", f"envelope over {max_body} bytes", address,
                                close=True)
        except BodyTooSlow:
            return await refuse(408, "body_timeout", "body not received within "
                                f"{limits.body_read_seconds:g} s", address, close=True)
        # Charged to the sender it claims when that is a pinned peer (the claim is checked
        # later; a forger can spend a peer's budget, not make us accept anything), else to
        # the address it came from.
        sender, seq = claimed(body)
        pinned = sender in exchange.peers
        source = f"claimed sender {sender}" if pinned else address
        if not rate.allow(source):
            if pinned and sender is not None and seq is not None:
                await reorder.refused(sender, seq)  # the ones waiting for it go now
            return await refuse(429, "rate_limited", "too many requests; retry later",
                                source, headers={"Retry-After": str(rate.retry_after())})
        parsed = await _decoded(body)
        ahead = await ahead_of_turn(exchange, beside, body, parsed)
        answer = await _decide(exchange, run, reorder, body, parsed, ahead)
        metrics.inc(f"envelopes_{answer.outcome.counted_as}")
        return web.Response(status=HTTP_STATUS[answer.outcome], body=answer.body,
                            content_type=ANSWER_TYPE)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "party": exchange.me.party})

    app = web.Application(client_max_size=max_body,
                          middlewares=[guard.middleware] if guard is not None else [])
    app.router.add_post("/v1/envelopes", post_envelope)
    app.router.add_get("/v1/health", health)
    return app
