"""The delivery loop looks at its outbox only when there may be something to send
(bridge/engine/sender.py): once a look took every pending envelope, the answers to them do not
make it look again; a wake-up (what the daemon sets after committing an envelope for this peer)
does, and what it finds goes out at once; a window that starts over after trouble looks again
without one. Envelopes the change told it of (``DeliveryLoop.offer``) go out without a look,
when they follow the last one sent without a gap and nothing was rewound. Two real engines on
real SQLite files, the real loop, an in-memory courier."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.daemon.pair import make_pair
from bridge.engine.exchange import Exchange
from bridge.engine.metrics import Metrics
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.engine.sender import DeliveryLoop
from bridge.home.config import Delivery
from bridge.store.sqlite.store import Store


class Courier:
    """Hands each envelope to the receiving engine and its answer back; ``lose`` drops the
    next answer (the loop gives it up after ``answer_wait``)."""

    def __init__(self, receiver: Exchange) -> None:
        self.receiver = receiver
        self.ready: asyncio.Queue[Arrival] = asyncio.Queue()
        self.sent: list[int] = []
        self.let_go_of: list[int] = []
        self.lose = 0

    async def send(self, batch: Sequence[Outgoing]) -> None:
        for env in batch:
            self.sent.append(env.seq)
            answer = self.receiver.receive_envelope(env.data)
            if self.lose:
                self.lose -= 1
                continue
            await self.ready.put(Arrival(seq=env.seq, digest=env.digest,
                                         result=Carried.ANSWERED, body=answer.body,
                                         note="memory"))

    async def receive(self) -> Arrival:
        return await self.ready.get()

    def let_go(self, seq: int, digest: bytes) -> None:
        self.let_go_of.append(seq)

    async def close(self) -> None:
        return None


def _engine(node: Any, peer: str, clock: list[int]) -> Exchange:
    return Exchange(store=Store(node.home.db_path), identity=node.home.identity(),
                    peers={peer: node.home.peer_identity(peer)}, config=node.home.config(),
                    clock=lambda: clock[0])


async def _until(condition: Any) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0)


async def _turns(n: int = 50) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class Rig:
    """Two engines of a pair made in ``tmp_path``, the courier between them, and alpha's
    looks at its outbox (``run``: its database thread, counting them)."""

    def __init__(self, tmp_path: Path) -> None:
        alpha_node, beta_node = make_pair(tmp_path, delivery=Delivery(chunk_items=4))
        clock = [alpha_node.home.public_identity().created + 1000]
        self.alpha = _engine(alpha_node, "beta", clock)
        self.beta = _engine(beta_node, "alpha", clock)
        self.courier = Courier(self.beta)
        self.looks: list[int] = []

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn == self.alpha.pending_rows:
            self.looks.append(args[1])
        return fn(*args, **kwargs)

    def submit(self, doc_id: str) -> None:
        self.alpha.submit_document({"type": "roster", "to": "beta", "id": doc_id,
                                    "items": [{"id": f"{doc_id}-1", "name": "someone"}]})

    def delivered(self, *doc_ids: str) -> bool:
        return all(self.alpha.document_detail(d, "out")["state"] == "delivered"
                   for d in doc_ids)

    def loop(self, wake: asyncio.Event) -> DeliveryLoop:
        return DeliveryLoop(peer="beta", courier=self.courier, exchange=self.alpha,
                            run=self.run, policy=self.alpha.config.delivery, metrics=Metrics(),
                            wake=wake, window=4)


def _run_then_close(main: Any, *engines: Exchange) -> None:
    try:
        asyncio.run(main())
    finally:
        for engine in engines:
            engine.engine.store.close()


def test_answers_make_no_look_a_wake_up_does_and_its_envelope_goes_at_once(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path)

    async def main() -> None:
        wake = asyncio.Event()
        loop = rig.loop(wake)
        rig.submit("R-1")
        task = asyncio.create_task(loop.run_forever())
        await _until(lambda: rig.delivered("R-1"))
        await _turns()
        assert len(rig.looks) == 1  # the look that found R-1; its answer made none
        rig.submit("R-2")  # committed; the daemon then wakes this peer's loop
        await _turns()
        assert len(rig.looks) == 1 and rig.courier.sent == [1]  # not woken: not looked for
        wake.set()
        await _until(lambda: rig.delivered("R-2"))
        assert rig.courier.sent == [1, 2] and len(rig.looks) == 2
        await _stop(task)

    _run_then_close(main, rig.alpha, rig.beta)


def test_a_lost_answer_starts_the_window_over_and_it_looks_again_unwoken(
        tmp_path: Path) -> None:
    """No wake-up comes for an envelope whose answer was lost: the loop's own start over
    (from the lowest pending envelope, after the backoff) looks and sends it again."""
    alpha_node, beta_node = make_pair(tmp_path, delivery=Delivery(
        chunk_items=4, request_timeout=0.05, initial_backoff=0.01, max_backoff=0.02))
    clock = [alpha_node.home.public_identity().created + 1000]
    alpha, beta = _engine(alpha_node, "beta", clock), _engine(beta_node, "alpha", clock)
    courier = Courier(beta)
    courier.lose = 1

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    async def main() -> None:
        loop = DeliveryLoop(peer="beta", courier=courier, exchange=alpha, run=run,
                            policy=alpha.config.delivery, metrics=Metrics(),
                            wake=asyncio.Event(), window=4)
        alpha.submit_document({"type": "roster", "to": "beta", "id": "R-1",
                               "items": [{"id": "R-1-1", "name": "someone"}]})
        task = asyncio.create_task(loop.run_forever())
        await _until(lambda: alpha.document_detail("R-1", "out")["state"] == "delivered")
        assert courier.sent == [1, 1]  # sent again after the lost answer, never woken
        # Told when its wait ran out: an answer that comes after is the courier's to keep
        # (the relay's would not come twice), not the loop's to drop.
        assert courier.let_go_of == [1]
        await _stop(task)

    _run_then_close(main, alpha, beta)


def _told_loop_run(tmp_path: Path, told: Any) -> tuple[list[int], list[int]]:
    """R-1 sent after one look; then R-2 and R-3 are queued, and the loop is told
    ``told(written)`` of them and woken. The looks it made after the first, what it sent."""
    rig = Rig(tmp_path)

    async def main() -> None:
        wake = asyncio.Event()
        loop = rig.loop(wake)
        rig.submit("R-1")
        rig.alpha.engine.store.take_written()
        task = asyncio.create_task(loop.run_forever())
        await _until(lambda: rig.delivered("R-1"))
        await _turns()
        rig.looks.clear()
        rig.submit("R-2")
        rig.submit("R-3")
        loop.offer(told(rig.alpha.engine.store.take_written()))
        wake.set()
        await _until(lambda: rig.delivered("R-2", "R-3"))
        await _stop(task)

    _run_then_close(main, rig.alpha, rig.beta)
    return rig.looks, rig.courier.sent


def test_envelopes_told_with_their_change_go_out_without_a_look(tmp_path: Path) -> None:
    looks, sent = _told_loop_run(tmp_path, lambda written: written)
    assert looks == [] and sent == [1, 2, 3]


def test_a_change_that_told_only_the_later_of_two_envelopes_makes_the_loop_look(
        tmp_path: Path) -> None:
    """The store tells at most a budget of envelopes, the newest: told only of 3, the loop
    must not send 3 before 2 (the peer would answer a gap); it looks and finds both."""
    looks, sent = _told_loop_run(tmp_path, lambda written: dataclasses.replace(
        written, new_rows=tuple(r for r in written.new_rows if r.seq == 3)))
    assert looks == [1] and sent == [1, 2, 3]


def test_a_change_that_rewound_the_outbox_makes_the_loop_look(tmp_path: Path) -> None:
    looks, sent = _told_loop_run(tmp_path, lambda written: dataclasses.replace(
        written, rewound=frozenset({"beta"})))
    assert looks == [1] and sent == [1, 2, 3]
