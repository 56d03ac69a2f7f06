"""The party's witnessing loop (PROTOCOL.md §13.4): submit a checkpoint of the audit log to one
pinned witness after the log grows, keep the cosignature, raise the alarm on a refusal.

Batched: at most one request in flight per witness; after a change it waits ``BATCH_SECONDS``
so that a burst of records is one checkpoint, and while anything changed it submits at least
every ``interval_seconds``; a log that has not grown is submitted again once its last
cosignature is ``REFRESH_MS`` old, so that a quiet log's clock reading stays fresh (PROTOCOL.md
§13.9). It never holds up an exchange: the exchange only signals that
the log changed, and everything here runs after that, on its own task. A witness that is down
is tried again (with backoff), and catches up from the size it last cosigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bridge.core.crypto.identity import PublicIdentity
from bridge.core.printable import said
from bridge.engine.exchange import Exchange
from bridge.engine.ports import RunInDb
from bridge.engine.witnessing import (
    ALARM,
    COSIGNED,
    REFRESH_MS,
    REFUSED,
    RESYNC,
    Reading,
    Submission,
    read_answer,
)
from bridge.home.config import VIA_RELAY, WitnessConfig
from bridge.transports.relay.link import RelayLink
from bridge.witness.couriers import (
    HttpWitnessCourier,
    RelayWitnessCourier,
    WitnessCourier,
    WitnessUnreachable,
)

log = logging.getLogger("bridge.witness")
BATCH_SECONDS = 0.2


class WitnessLoop:
    def __init__(self, *, config: WitnessConfig, identity: PublicIdentity, exchange: Exchange,
                 run: RunInDb, courier: WitnessCourier) -> None:
        self.config = config
        self.courier = courier
        self.identity = identity
        self.exchange = exchange
        self.run = run
        self.wake = asyncio.Event()
        self.old: int | None = None  # the size the witness has, as far as we know
        self.done = 0  # the largest size it cosigned for us
        self._alarmed: tuple[str, int | None] | None = None
        self._failures = 0
        self._confirmed = False  # has the witness answered since we started?
        self._read_at: int | None = None  # our signing time of its last cosignature (ms)

    @property
    def name(self) -> str:
        return self.config.name

    async def run_forever(self) -> None:
        w = self.exchange.witnessing
        self.done = await self.run(w.last_cosigned, self.name)
        self.old = self.done
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._pause()):
                        await self.wake.wait()
                    await asyncio.sleep(BATCH_SECONDS)  # a burst of records: one checkpoint
                self.wake.clear()
                await self.submit()
        finally:
            await self.courier.close()

    def _pause(self) -> float:
        base = self.config.interval_seconds
        return min(base * (2 ** min(self._failures, 6)), 300.0) if self._failures else base

    async def submit(self) -> None:
        """Submit the log's checkpoint; follow one 409 to the witness's size."""
        for _ in range(2):
            assert self.old is not None
            sub = await self.run(self.exchange.witnessing.prepare, self.old, self.done,
                                 force=not self._confirmed or self._reading_due())
            if sub is None:
                return
            answer = await self._post(sub)
            if answer is None:
                return
            self._confirmed = True
            reading = self._read(sub, *answer)
            if reading.kind != RESYNC:
                await self._act(sub, reading)
                return
            self.old = reading.size

    def _reading_due(self) -> bool:
        """Is the last cosignature old enough that the same size is submitted again?"""
        return self._read_at is not None and \
            self.exchange.now() - self._read_at >= REFRESH_MS

    def _read(self, sub: Submission, status: int, ctype: str, body: bytes) -> Reading:
        return read_answer(sub, status, ctype, body, self.identity)

    async def _post(self, sub: Submission) -> tuple[int, str, bytes] | None:
        try:
            return await self.courier.add_checkpoint(sub.body)
        except WitnessUnreachable as exc:
            self._failures += 1
            self.exchange.metrics.inc("witness_unreachable", witness=self.name)
            log.info("witness %s unreachable: %s", self.name, said(exc))
            return None

    async def _act(self, sub: Submission, reading: Reading) -> None:
        w = self.exchange.witnessing
        if reading.kind == COSIGNED:
            self._failures = 0
            self._alarmed = None
            await self.run(w.keep, self.name, reading)
            self.old = self.done = sub.size
            self._read_at = sub.signed_at
            log.info("witness %s cosigned size %d", self.name, sub.size)
            return
        self._failures += 1
        key = (reading.reason, reading.size)
        if self._alarmed == key:
            return  # one alarm for one refusal, however often it is repeated
        self._alarmed = key
        if reading.kind == ALARM:
            await self.run(w.alarm, self.name, reading)
        elif reading.kind == REFUSED:
            await self.run(w.refused, self.name, reading)
        else:
            log.info("witness %s: %s", self.name, reading.detail)


def witness_loops(exchange: Exchange, run: RunInDb, witnesses: dict[str, Any],
                  identities: dict[str, PublicIdentity],
                  relay: RelayLink | None = None) -> list[WitnessLoop]:
    """One loop for each pinned witness whose identity file is there, each over its HTTP URL
    or, for a witness pinned ``via = "relay"``, through the daemon's one relay connection."""
    loops = []
    for name, cfg in witnesses.items():
        if name not in identities:
            continue
        courier: WitnessCourier
        if cfg.via == VIA_RELAY:
            assert relay is not None  # the Config refuses a witness via relay with no [relay]
            courier = RelayWitnessCourier(relay, name)
        else:
            assert cfg.url is not None  # the Config refuses a witness via http with no url
            courier = HttpWitnessCourier(cfg.url)
        loops.append(WitnessLoop(config=cfg, identity=identities[name], exchange=exchange,
                                 run=run, courier=courier))
    return loops


__all__ = ["WitnessLoop", "witness_loops"]
