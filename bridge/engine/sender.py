"""The sender: one peer's outbox, carried by a ``Courier``, in sequence order, forever.

Delivery is at-least-once: the loop hands pending envelopes to the courier, up to ``window``
at once in sequence order (PROTOCOL.md §8.7), and pairs each arrival (the peer's signed
transport answer, or why there is none) with the envelope it names. New work is
sent as soon as it is queued while the window has room. Until the peer decides on an envelope
(accepted or refused) it is tried again: any other answer (a gap, ``unavailable``, anything
malformed or bound to another envelope, no answer in time) ends the window, whose other
envelopes are answered first, and is followed by an exponential backoff with full jitter
(capped) before the lowest pending envelope goes again. A gap that names an envelope still in
flight only means this one overtook it: no backoff. The peer's duplicate detection turns all
this into exactly-once processing. A peer over whose rate we went (HTTP 429) is paced by the
courier, which holds every send to it until the Retry-After has passed: no backoff here. What
to do with each answer is ``bridge.engine.delivery``'s (sans I/O); this loop only waits: for
work, for the courier, for the backoff.
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
from bridge.store.sqlite.store import OutboxRow, Written

log = logging.getLogger("bridge.peer")


class DeliveryLoop:
    """Sends one peer's outbox in sequence order, forever, until stopped. Up to ``window``
    envelopes are in flight at once, sent in order (PROTOCOL.md §8.7); 1 sends each only
    after the answer to the one before."""

    def __init__(self, *, peer: str, courier: Courier, exchange: Exchange, run: RunInDb,
                 policy: Delivery, metrics: Metrics, wake: asyncio.Event,
                 rng: random.Random | None = None, answer_wait: float | None = None,
                 window: int = 1) -> None:
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
        self.window = max(1, window)
        self._after = 0  # the highest seq sent since the window last started over
        # The last look took every envelope pending after ``_after``: until a change wakes
        # this loop (every envelope queued or rewound for this peer does, after its commit),
        # there is nothing more to look for. False whenever the window starts over.
        self._seen_all = False
        self._deadlines: dict[int, float] = {}  # seq in flight -> when its answer is given up
        # The envelopes queued for this peer since the last look, as the change told them
        # (``offer``); None when the outbox changed in a way not told: the next fill looks.
        self._offered: list[OutboxRow] | None = None
        self._receiving: asyncio.Future[Arrival] | None = None  # the courier's next arrival

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
            if self._receiving is not None:
                self._receiving.cancel()
            await self.courier.close()

    async def _deliver(self) -> None:
        while True:
            await self._fill()
            settled = await self._settle_next(refill=True)
            if settled is None:
                continue  # new work, and room for it in the window
            row, progress, at_once = settled
            if at_once or not progress:
                # Whatever else is in flight is answered (or given up) first; then from the
                # lowest pending envelope again, after a backoff unless this one only
                # overtook an earlier one (PROTOCOL.md §8.7) or the courier paces the peer.
                progress = await self._drain() or progress
                self._after, self._seen_all = 0, False
            delay = None if at_once else self._retry.after(row.seq, progress)
            if delay is not None:
                # The whole backoff, whatever happens meanwhile. New local work does not
                # shorten it: the next attempt sends the same lowest pending envelope, and our
                # own events (each delivery wakes every loop) would otherwise cut it short.
                await asyncio.sleep(delay)

    async def _fill(self) -> None:
        """Send pending envelopes after the last one sent, up to ``window`` in flight; wait
        for one when nothing is pending and nothing is in flight. No look at the outbox when
        the last one took everything and nothing was queued for this peer since (the answer
        to an envelope queues nothing: it used to cost one look per answer)."""
        while True:
            room = self.window - len(self._in_flight)
            if room <= 0:
                return  # the wake-up, if any, is kept for when there is room
            if self._seen_all and not self.wake.is_set():
                if len(self._in_flight):
                    return
                await self.wake.wait()
            # Cleared before looking: work queued after the look wakes us (no lost wake-up).
            self.wake.clear()
            rows = self._told(room)
            if rows is None:
                rows = await self._pending(room)
            if rows:
                self._after = rows[-1].seq
                loop = asyncio.get_running_loop()
                for row in rows:
                    self._deadlines[row.seq] = loop.time() + self.answer_wait
                await self.courier.send([self._in_flight.add(row) for row in rows])
                return
            if len(self._in_flight):
                return
            await self.wake.wait()

    def offer(self, written: Written | None) -> None:
        """A change, on disk (loop thread, before this loop is woken for it): the envelopes
        it queued for this peer are kept for the next fill."""
        if written is not None and self.peer not in written.outboxes:
            return
        rows = [r for r in written.new_rows if r.peer == self.peer] if written else []
        if not rows or written is None or self.peer in written.rewound:
            self._offered = None  # queued or rewound, but which: not told
        elif self._offered is not None:
            self._offered.extend(rows)
            if len(self._offered) > self.window:  # more than one fill sends: it looks
                self._offered = None

    def _told(self, room: int) -> list[OutboxRow] | None:
        """The envelopes told since the last look (``offer``), when they are all there is to
        send: the last look took everything pending, and they follow the last one sent without
        a gap. Else None, and the fill looks at the outbox (which holds them all)."""
        offered, self._offered = self._offered, []
        if not self._seen_all or not offered:
            return None
        fresh = [r for r in offered if r.seq > self._after]  # in sequence order, as queued
        if not fresh or len(fresh) > room or fresh[0].seq != self._after + 1 or (
                fresh[-1].seq - fresh[0].seq != len(fresh) - 1):
            return None
        return fresh

    async def _pending(self, room: int) -> list[OutboxRow]:
        rows = await self.run(self.exchange.pending_rows, self.peer, self._after, room)
        self._seen_all = len(rows) < room
        return [r for r in rows if not self._in_flight.holds(r)]

    async def _settle_next(self, *, refill: bool = False
                           ) -> tuple[OutboxRow, bool, bool] | None:
        """The next answer (or the oldest envelope's time running out), acted on: the row,
        whether the peer decided on it, and whether it goes again with no backoff (it only
        overtook an earlier one, or the courier holds it for the peer's Retry-After). With
        ``refill``, None when new work came first and the window has room for it."""
        arrival = await self._next_arrival(refill and len(self._in_flight) < self.window)
        if arrival is None:
            return None
        row = self._in_flight.match(arrival)
        assert row is not None  # _next_arrival hands only arrivals for what is in flight
        self._deadlines.pop(row.seq, None)
        progress, at_once = await self._attempt(row, arrival)
        self.metrics.inc("envelopes_sent" if progress else "delivery_retries")
        return row, progress, at_once

    async def _next_arrival(self, woken: bool) -> Arrival | None:
        """An arrival that names an envelope in flight; one naming anything else (a late
        answer to an earlier try) is dropped. With ``woken``, None as soon as new work is
        queued (the wake-up), so it is sent without waiting for an answer first."""
        while True:
            oldest = min(self._deadlines.items(), key=lambda kv: kv[1])
            wait = max(0.0, oldest[1] - asyncio.get_running_loop().time())
            if self._receiving is None:  # kept across wake-ups: an answer is never lost
                self._receiving = asyncio.ensure_future(self.courier.receive())
            waking = asyncio.ensure_future(self.wake.wait()) if woken else None
            done, _ = await asyncio.wait([f for f in (self._receiving, waking) if f],
                                         timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if waking is not None and not waking.done():
                waking.cancel()
            if not self._receiving.done():
                if waking is not None and waking in done:
                    return None  # the courier's next arrival is still awaited, not lost
                # Time ran out: nothing is taken from the courier now, so an answer that
                # comes late stays there for the next try (the relay keeps it).
                self._receiving.cancel()
                self._receiving = None
                row = self._in_flight.row(oldest[0])
                self.courier.let_go(row.seq, row.digest)
                return Arrival(seq=row.seq, digest=row.digest, result=Carried.UNREACHABLE,
                               detail="TimeoutError: no answer")
            arrival, self._receiving = self._receiving.result(), None
            if self._in_flight.holds_arrival(arrival):
                return arrival
            log.info("peer %s: dropped an answer to envelope %d, not in flight", self.peer,
                     arrival.seq)

    async def _drain(self) -> bool:
        """Settle everything in flight (answers, or time running out); True when the peer
        decided on any of it."""
        progress = False
        while len(self._in_flight):
            settled = await self._settle_next()
            assert settled is not None  # not woken for new work: nothing more is sent now
            row, decided, _ = settled
            if decided:
                self._retry.after(row.seq, True)
            progress = progress or decided
        return progress

    async def _attempt(self, row: OutboxRow, arrival: Arrival) -> tuple[bool, bool]:
        """Act on the arrival for ``row``: (the peer decided on it, it goes again at once)."""
        outcome = None
        reaction = carriage_reaction(arrival)
        if reaction is None:
            self._pin_alarm = False
            outcome = await self.run(self.exchange.tried, row, arrival.body, arrival.note,
                                     self._in_flight.seqs())
            reaction = answer_reaction(arrival, outcome)
        elif not reaction.paced:  # a 429 reached nothing that decides: no attempt counted
            await self.run(self.exchange.count_attempt, row)
            if reaction.pin_mismatch:
                await self._pin_mismatch(arrival.detail)
        if outcome is not None and outcome.state is DeliveryState.OVERTAKEN:
            # Not trouble: an earlier envelope is on its way (PROTOCOL.md §8.7).
            return False, True
        self.status.tried(reachable=reaction.reachable, trouble=reaction.trouble,
                          detail=reaction.detail, now=self.exchange.now())
        await self._mark(reaction.reachable, reaction.detail)
        if reaction.counter is not None:
            self.metrics.inc(reaction.counter)
        if reaction.paced:
            return False, True
        if outcome is not None and not reaction.progress:
            if outcome.state is DeliveryState.REWOUND:
                log.info("peer %s asked to resend: %s", self.peer, outcome.detail)
            else:
                log.warning("delivery of envelope %d to %s failed: %s", row.seq, self.peer,
                            outcome.detail)
        return reaction.progress, False

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
