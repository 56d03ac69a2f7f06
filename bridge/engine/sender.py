"""The sender: one peer's outbox, carried by a ``Courier``, in sequence order, forever.

Delivery is at-least-once: the loop hands the lowest pending envelope to the courier, waits
for its arrival (the peer's signed transport answer, or why there is none), and retries with
exponential backoff and full jitter (capped) until the peer decides on it (accepted or
refused). Any other answer (a gap, ``unavailable``, anything malformed or bound to another
envelope) is a retry with backoff too. The peer's duplicate detection turns that into
exactly-once processing. What to do with each answer is ``bridge.engine.delivery``'s (sans
I/O); this loop only waits: for work, for the courier, for the backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random

from bridge.engine.delivery import (
    InFlight,
    Reachability,
    Retry,
    answer_reaction,
    carriage_reaction,
)
from bridge.engine.exchange import Exchange
from bridge.engine.link_status import LinkStatus
from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import DeliveryState
from bridge.engine.ports import Arrival, Carried, Courier, RunInDb
from bridge.home.config import Delivery
from bridge.store.sqlite.store import OutboxRow

log = logging.getLogger("bridge.peer")


class DeliveryLoop:
    """Sends one peer's outbox in sequence order, forever, until stopped. One envelope is in
    flight at a time (the chain is in order, and the peer takes nothing past a gap)."""

    def __init__(self, *, peer: str, courier: Courier, exchange: Exchange, run: RunInDb,
                 policy: Delivery, metrics: Metrics, wake: asyncio.Event,
                 rng: random.Random | None = None, answer_wait: float | None = None) -> None:
        self.peer = peer
        self.courier = courier
        self.exchange = exchange
        self.run = run
        self.policy = policy
        self.metrics = metrics
        self.wake = wake
        # How long an answer may take once the courier has the envelope: twice the request
        # timeout for HTTP (the answer comes in the response), the relay's answer_wait through
        # the mediator (the envelope waits in the broker for a peer that may be away for hours).
        self.answer_wait = answer_wait if answer_wait is not None else policy.request_timeout * 2
        self._reach = Reachability()
        self.status = LinkStatus(peer, metrics)
        self._pin_alarm = False
        self._in_flight = InFlight()
        self._retry = Retry(policy, rng or random.Random())  # noqa: S311 -- jitter, not a secret

    @property
    def reachable(self) -> bool | None:
        return self._reach.reachable

    @reachable.setter
    def reachable(self, known: bool | None) -> None:
        """What an earlier loop for this peer knew (a reload that moved it keeps that, so
        its coming back is still told once)."""
        self._reach.reachable = known

    async def _mark(self, reachable: bool, detail: str) -> None:
        event = self._reach.mark(reachable)
        if event == "peer_back":
            log.info("peer %s is back", self.peer)
        elif event == "peer_unreachable":
            log.warning("peer %s unreachable: %s", self.peer, detail)
        if event is not None:
            await self.run(self.exchange.peer_event, event, self.peer, detail)

    async def run_forever(self) -> None:
        try:
            await self._deliver()
        finally:
            await self.courier.close()

    async def _deliver(self) -> None:
        while True:
            row = await self._next()
            progress = await self._attempt(row)
            if progress:
                self.metrics.inc("envelopes_sent")
            else:
                self.metrics.inc("delivery_retries")
            delay = self._retry.after(row.seq, progress)
            if delay is not None:
                # The whole backoff, whatever happens meanwhile. New local work does not
                # shorten it: the next attempt sends the same lowest pending envelope, and our
                # own events (each delivery wakes every loop) would otherwise cut it short.
                await asyncio.sleep(delay)

    async def _next(self) -> OutboxRow:
        """The lowest pending envelope, waiting for one when there is none."""
        while True:
            row = await self.run(self.exchange.next_pending, self.peer)
            if row is not None:
                return row  # type: ignore[no-any-return]
            self.wake.clear()
            row = await self.run(self.exchange.next_pending, self.peer)
            if row is not None:
                return row  # type: ignore[no-any-return]
            await self.wake.wait()

    async def _carry(self, row: OutboxRow) -> Arrival:
        """Hand ``row`` to the courier and wait for the arrival that names it; an arrival
        naming anything else (a late answer to an earlier try) is dropped."""
        await self.courier.send([self._in_flight.add(row)])
        async with asyncio.timeout(self.answer_wait):
            while True:
                arrival = await self.courier.receive()
                if self._in_flight.match(arrival) is not None:
                    return arrival
                log.info("peer %s: dropped an answer to envelope %d, not in flight", self.peer,
                         arrival.seq)

    async def _attempt(self, row: OutboxRow) -> bool:
        """Carry ``row`` once; True when the peer decided on it (accepted or refused)."""
        await self.run(self.exchange.count_attempt, row)
        try:
            arrival = await self._carry(row)
        except TimeoutError:
            self._in_flight.discard(row)
            arrival = Arrival(seq=row.seq, digest=row.digest, result=Carried.UNREACHABLE,
                              detail="TimeoutError: no answer")
        outcome = None
        reaction = carriage_reaction(arrival)
        if reaction is None:
            self._pin_alarm = False
            outcome = await self.run(self.exchange.answered, row, arrival.body, arrival.note)
            reaction = answer_reaction(arrival, outcome)
        elif reaction.pin_mismatch:
            await self._pin_mismatch(arrival.detail)
        self.status.tried(reachable=reaction.reachable, trouble=reaction.trouble,
                          detail=reaction.detail, now=self.exchange.now())
        await self._mark(reaction.reachable, reaction.detail)
        if reaction.counter is not None:
            self.metrics.inc(reaction.counter)
        if outcome is not None and not reaction.progress:
            if outcome.state is DeliveryState.REWOUND:
                log.info("peer %s asked to resend: %s", self.peer, outcome.detail)
            else:
                log.warning("delivery of envelope %d to %s failed: %s", row.seq, self.peer,
                            outcome.detail)
        return reaction.progress

    async def _pin_mismatch(self, detail: str) -> None:
        """Whoever answers at the peer's address is not the endpoint we pinned: an on-path
        attacker, or a peer that changed its certificate without telling us. Nothing was sent;
        the envelope stays queued. One alarm per run of mismatches, not one per retry."""
        log.error("peer %s: %s", self.peer, detail)
        self.metrics.inc("tls_pin_mismatches")
        if not self._pin_alarm:
            self._pin_alarm = True
            await self.run(self.exchange.peer_event, "security_alarm", self.peer, detail,
                           "tls_pin_mismatch")
