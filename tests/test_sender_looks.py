"""The delivery loop looks at its outbox only when there may be something to send
(bridge/engine/sender.py): once a look took every pending envelope, the answers to them do not
make it look again; a wake-up (what the daemon sets after committing an envelope for this peer)
does, and what it finds goes out at once; a window that starts over after trouble looks again
without one. Two real engines on real SQLite files, the real loop, an in-memory courier."""

from __future__ import annotations

import asyncio
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


def _run_then_close(main: Any, *engines: Exchange) -> None:
    try:
        asyncio.run(main())
    finally:
        for engine in engines:
            engine.engine.store.close()


def test_answers_make_no_look_a_wake_up_does_and_its_envelope_goes_at_once(
        tmp_path: Path) -> None:
    alpha_node, beta_node = make_pair(tmp_path, delivery=Delivery(chunk_items=4))
    clock = [alpha_node.home.public_identity().created + 1000]
    alpha, beta = _engine(alpha_node, "beta", clock), _engine(beta_node, "alpha", clock)
    courier = Courier(beta)
    looks: list[int] = []

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn == alpha.pending_rows:
            looks.append(args[1])
        return fn(*args, **kwargs)

    def submit(doc_id: str) -> None:
        alpha.submit_document({"type": "roster", "to": "beta", "id": doc_id,
                               "items": [{"id": f"{doc_id}-1", "name": "someone"}]})

    def state(doc_id: str) -> str:
        return str(alpha.document_detail(doc_id, "out")["state"])

    async def main() -> None:
        wake = asyncio.Event()
        loop = DeliveryLoop(peer="beta", courier=courier, exchange=alpha, run=run,
                            policy=alpha.config.delivery, metrics=Metrics(), wake=wake,
                            window=4)
        submit("R-1")
        task = asyncio.create_task(loop.run_forever())
        await _until(lambda: state("R-1") == "delivered")
        await _turns()
        assert len(looks) == 1  # the look that found R-1; its answer made none
        submit("R-2")  # committed; the daemon then wakes this peer's loop
        await _turns()
        assert len(looks) == 1 and courier.sent == [1]  # not woken: not looked for
        wake.set()
        await _until(lambda: state("R-2") == "delivered")
        assert courier.sent == [1, 2] and len(looks) == 2
        await _stop(task)

    _run_then_close(main, alpha, beta)


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
        await _stop(task)

    _run_then_close(main, alpha, beta)
