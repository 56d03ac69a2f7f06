"""The peer adapter: the HTTP endpoint other bridges POST envelopes to, and the delivery loop
that POSTs ours to them.

Delivery is at-least-once: the loop sends the lowest pending envelope, waits for a signed
transport answer, and retries with exponential backoff and full jitter (capped) until the peer
decides on it (accepted or refused). Any other answer (a gap, ``unavailable``, anything
malformed or bound to another envelope) is a retry with backoff too. The peer's duplicate
detection turns that into exactly-once processing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bridge.core import codec
from bridge.engine.exchange import Exchange, PeerAnswer, decode_envelope
from bridge.engine.limits import RateLimiter, claimed_sender
from bridge.engine.metrics import Metrics
from bridge.home.folder import Delivery, Limits
from bridge.store.sqlite.store import OutboxRow
from bridge.transports.http.limits import (
    BodyTooLarge,
    BodyTooSlow,
    ConnectionGuard,
    read_body,
    read_bounded,
)

log = logging.getLogger("bridge.peer")
T = TypeVar("T")
RunInDb = Callable[..., Awaitable[Any]]
ENVELOPE_TYPE = "application/vnd.bridge.envelope"
ANSWER_TYPE = "application/vnd.bridge.transport-answer"
# The answers that move the outbox forward: the peer decided on the envelope.
PROGRESS = frozenset({"delivered", "refused"})


def peer_app(exchange: Exchange, run: RunInDb, metrics: Metrics, max_body: int,
             limits: Limits | None = None, guard: ConnectionGuard | None = None
             ) -> web.Application:
    """The peer endpoint. Before an envelope costs any cryptography or database work it must
    have the envelope content type, arrive whole in time and within the size limit, and fit
    its sender's rate (bridge/transports/http/limits.py, bridge/engine/limits.py). Those refusals
    carry no
    signed answer: they are the HTTP layer's, and a flood must not make us sign."""
    limits = limits or Limits()
    rate = RateLimiter(rate=limits.requests_per_second, burst=limits.burst)

    async def refuse(status: int, reason: str, text: str, source: str, *,
                     close: bool = False, headers: dict[str, str] | None = None
                     ) -> web.Response:
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
        claimed = claimed_sender(body)
        source = f"claimed sender {claimed}" if claimed in exchange.peers else address
        if not rate.allow(source):
            return await refuse(429, "rate_limited", "too many requests; retry later",
                                source, headers={"Retry-After": str(rate.retry_after())})
        # Decoding what a stranger sent is bounded (PROTOCOL.md §2.4, §5.1), but it is not
        # the database's work: done beside it, a hostile body never delays the local API.
        parsed = await asyncio.get_running_loop().run_in_executor(None, decode_envelope, body)
        answer: PeerAnswer = await run(exchange.receive_envelope, body, parsed)
        metrics.inc(f"envelopes_{answer.outcome}")
        return web.Response(status=answer.status, body=answer.body, content_type=ANSWER_TYPE)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "party": exchange.me.party})

    app = web.Application(client_max_size=max_body,
                          middlewares=[guard.middleware] if guard is not None else [])
    app.router.add_post("/v1/envelopes", post_envelope)
    app.router.add_get("/v1/health", health)
    return app


MAX_ANSWER_BYTES = codec.SMALL_LIMITS.max_bytes


def backoff_delay(attempt: int, policy: Delivery, rng: random.Random) -> float:
    """Full jitter (uniform in [0, min(cap, base * 2**attempt)]), never below 10 ms."""
    ceiling = min(policy.max_backoff, policy.initial_backoff * (2 ** min(attempt, 30)))
    return max(0.01, rng.uniform(0, ceiling))


class DeliveryLoop:
    """Sends one peer's outbox in sequence order, forever, until stopped."""

    def __init__(self, *, peer: str, url: str, exchange: Exchange, run: RunInDb,
                 policy: Delivery, metrics: Metrics, wake: asyncio.Event,
                 tls_fingerprint: str | None = None) -> None:
        self.peer = peer
        self.url = url.rstrip("/") + "/v1/envelopes"
        # The pinned SHA-256 of the peer's TLS certificate is the whole trust: aiohttp then uses
        # a context that checks no CA and no host name, and compares the certificate's digest
        # after the handshake, before a byte of the request is sent.
        self.ssl: aiohttp.Fingerprint | bool = (
            aiohttp.Fingerprint(bytes.fromhex(tls_fingerprint)) if tls_fingerprint else True)
        self._pin_alarm = False
        self.exchange = exchange
        self.run = run
        self.policy = policy
        self.metrics = metrics
        self.wake = wake
        self.reachable: bool | None = None
        self._rng = random.Random()  # noqa: S311 -- jitter, not a secret

    async def _mark(self, reachable: bool, detail: str) -> None:
        if self.reachable is reachable:
            return
        was_known = self.reachable is not None
        self.reachable = reachable
        if reachable and was_known:
            log.info("peer %s is back", self.peer)
            await self.run(self.exchange.peer_event, "peer_back", self.peer, detail)
        elif not reachable:
            log.warning("peer %s unreachable: %s", self.peer, detail)
            await self.run(self.exchange.peer_event, "peer_unreachable", self.peer, detail)

    async def run_forever(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.policy.request_timeout)
        failures = 0
        delivered = 0  # the highest seq the peer decided on in this run
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                row = await self.run(self.exchange.next_pending, self.peer)
                if row is None:
                    self.wake.clear()
                    row = await self.run(self.exchange.next_pending, self.peer)
                    if row is None:
                        await self.wake.wait()
                        continue
                if await self._attempt(session, row):
                    self.metrics.inc("envelopes_sent")
                    # Progress is new ground: re-delivering what a gap rewound is not, or a
                    # peer that accepts seq 1 and answers seq 2 with "gap, expected 1" would
                    # reset the backoff every round.
                    if row.seq > delivered:
                        delivered, failures = row.seq, 0
                    continue
                # Every attempt that made no progress is followed by a backoff, whatever the
                # answer said (PROTOCOL §8.4): a peer answering each delivery with a gap, or
                # a replayed answer, costs one attempt per backoff, never a spin.
                failures += 1
                self.metrics.inc("delivery_retries")
                await self._sleep(failures)

    async def _attempt(self, session: aiohttp.ClientSession, row: OutboxRow) -> bool:
        """POST ``row`` once; True when the peer decided on it (accepted or refused)."""
        await self.run(self.exchange.count_attempt, row)
        try:
            async with session.post(self.url, data=row.envelope, ssl=self.ssl,
                                    headers={"Content-Type": ENVELOPE_TYPE}) as resp:
                # A transport answer is a small signed statement (PROTOCOL §8.3,
                # decoded with the SMALL limits): a longer one is never read.
                body = await read_bounded(resp.content, MAX_ANSWER_BYTES, 16 * 1024)
                status = resp.status
        except BodyTooLarge:
            await self._mark(False, f"answer over {MAX_ANSWER_BYTES} bytes")
            self.metrics.inc("delivery_failed")
            return False
        except aiohttp.ServerFingerprintMismatch as exc:
            await self._pin_mismatch(exc)
            await self._mark(False, "TLS certificate does not match the pinned one")
            return False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._mark(False, f"{type(exc).__name__}: {exc}")
            return False
        self._pin_alarm = False
        outcome = await self.run(self.exchange.delivery_answer, row, status, body)
        # A peer that answers but cannot record (its disk is full) is not reachable for
        # delivery: one event when that starts, one when it ends.
        await self._mark(outcome.state != "unavailable",
                         f"HTTP {status}: {outcome.detail or outcome.state}")
        if outcome.state in PROGRESS:
            return True
        self.metrics.inc(f"delivery_{outcome.state}")
        if outcome.state == "rewound":
            log.info("peer %s asked to resend: %s", self.peer, outcome.detail)
        else:
            log.warning("delivery of envelope %d to %s failed: %s", row.seq, self.peer,
                        outcome.detail)
        return False

    async def _pin_mismatch(self, exc: aiohttp.ServerFingerprintMismatch) -> None:
        """Whoever answers at the peer's address is not the endpoint we pinned: an on-path
        attacker, or a peer that changed its certificate without telling us. Nothing was sent;
        the envelope stays queued. One alarm per run of mismatches, not one per retry."""
        detail = (f"TLS certificate of {exc.host}:{exc.port} has SHA-256 {exc.got.hex()}, "
                  f"pinned {exc.expected.hex()}; nothing sent. If the peer changed its "
                  "certificate, compare the new fingerprint out of band and pin it with "
                  "bridge peer add --tls-fingerprint --replace")
        log.error("peer %s: %s", self.peer, detail)
        self.metrics.inc("tls_pin_mismatches")
        if not self._pin_alarm:
            self._pin_alarm = True
            await self.run(self.exchange.peer_event, "security_alarm", self.peer, detail,
                           "tls_pin_mismatch")

    async def _sleep(self, failures: int) -> None:
        """The whole backoff, whatever happens meanwhile. New local work does not shorten it:
        the next attempt sends the same lowest pending envelope, and our own events (each
        delivery wakes every loop) would otherwise cut every backoff short."""
        await asyncio.sleep(backoff_delay(failures - 1, self.policy, self._rng))
