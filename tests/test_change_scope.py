"""A change says whom it concerns (bridge/daemon/dbthread.py, bridge/daemon/run.py): the store
counts every outbox insert or rewind and every event where it is written, the database thread
signals that with the change (a group's: all of its operations'), and the daemon wakes only the
delivery loops whose outboxes gained envelopes, and the event streams only when an event was
written. A change whose scope is not known wakes every loop and every stream.

A real SQLite file, the real ``Store`` and the real database thread on a real asyncio loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.event_api import event_stream, next_message

from bridge.daemon import dbthread
from bridge.daemon.dbthread import DatabaseThread
from bridge.daemon.recent import RecentEvents
from bridge.daemon.run import Daemon
from bridge.store.sqlite.store import Store, Written

NOW = 1_700_000_000_000


def queue_envelope(store: Store, peer: str, seq: int) -> None:
    with store.transaction():
        store.insert_outbox(peer=peer, seq=seq, msg_id=bytes(16), digest=bytes([seq]) * 32,
                            envelope=b"sealed", kind="chunk", doc=None, first=None, n=None,
                            now=NOW)


def add_event(store: Store, kind: str) -> None:
    with store.transaction():
        store.add_event(kind, {}, NOW)


class Rig:
    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.store = Store(path)
        self.loop = loop
        self.said: list[Written | None] = []
        self.db = DatabaseThread(self.store, loop, grouped=lambda fn, args: fn.__name__ != "wait",
                                 changed=self.said.append)

    def one(self, op: Callable[[], None]) -> None:
        """``op`` then a change signal, alone on the thread."""
        def run() -> None:
            op()
            self.db.notify()
        self.loop.run_until_complete(self.db.run(run))
        self.loop.run_until_complete(asyncio.sleep(0))

    def group(self, ops: list[Callable[[], None]]) -> None:
        """``ops``, each followed by a change signal, queued behind a gate: one group."""
        gate = threading.Event()

        def signalled(op: Callable[[], None]) -> Callable[[], None]:
            return lambda: (op(), self.db.notify())[0]

        held = self.db.run(gate.wait, 10)
        futures = [self.db.run(signalled(op)) for op in ops]
        gate.set()
        self.loop.run_until_complete(asyncio.gather(held, *futures))
        self.loop.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setattr(dbthread, "GROUP_SECONDS", 60.0)
    loop = asyncio.new_event_loop()
    made = Rig(tmp_path / "store.db", loop)
    yield made
    made.db.stop()
    made.store.close()
    loop.close()


def test_an_envelope_queued_for_one_peer_names_that_outbox_and_no_event(rig: Rig) -> None:
    rig.one(lambda: queue_envelope(rig.store, "beta", 1))
    assert rig.said == [Written(frozenset({"beta"}), events=False)]


def test_an_event_alone_names_no_outbox_so_wakes_no_delivery_loop(rig: Rig) -> None:
    rig.one(lambda: add_event(rig.store, "peer_unreachable"))
    assert rig.said == [Written(frozenset(), events=True)]


def test_a_rewind_after_a_gap_names_the_rewound_outbox(rig: Rig) -> None:
    queue_envelope(rig.store, "gamma", 1)
    with rig.store.transaction():
        rig.store.finish_outbox("gamma", 1, "delivered", b"receipt", NOW)
    rig.store.take_written()  # what came before: said already
    rig.one(lambda: rig.store.rewind_outbox("gamma", 1))
    assert rig.said == [Written(frozenset({"gamma"}), events=False)]


def test_one_group_says_everything_its_operations_wrote_in_one_signal(rig: Rig) -> None:
    rig.group([lambda: queue_envelope(rig.store, "beta", 1),
               lambda: add_event(rig.store, "document_delivered"),
               lambda: queue_envelope(rig.store, "gamma", 1)])
    assert rig.said == [Written(frozenset({"beta", "gamma"}), events=True)]


def test_a_write_rolled_back_is_still_named_so_no_wake_up_is_missed(rig: Rig) -> None:
    """Named though taken back: a loop woken for nothing finds nothing; the reverse (a
    write on disk whose waiter was not woken) is what must never happen."""
    def refused() -> None:
        with rig.store.transaction():
            rig.store.add_event("refused", {}, NOW)
            queue_envelope(rig.store, "beta", 1)
            raise ValueError("refused in the middle")

    with pytest.raises(ValueError):
        rig.loop.run_until_complete(rig.db.run(refused))
    rig.one(lambda: None)
    assert rig.said == [Written(frozenset({"beta"}), events=True)]


# ------------------------------------------------------------ whom the daemon wakes


@pytest.fixture
def daemon() -> Iterator[Any]:
    """The daemon's change routing alone: its wake-ups for peers beta and gamma, a witness,
    and its event streams' condition, on a real loop (no home, no sockets)."""
    loop = asyncio.new_event_loop()
    d: Any = Daemon.__new__(Daemon)
    d._loop, d._pending, d._event_writes = loop, set(), 0
    d._recent, d.loops = RecentEvents(), {}
    d.metrics = None

    async def made() -> None:
        d._changed = asyncio.Condition()
        d._wakes = {"beta": asyncio.Event(), "gamma": asyncio.Event()}
        d._witness_wakes = [asyncio.Event()]
    loop.run_until_complete(made())
    yield d

    async def settled() -> None:
        await asyncio.gather(*d._pending)
    loop.run_until_complete(settled())
    loop.close()


def _woken(d: Any) -> set[str]:
    return {name for name, event in d._wakes.items() if event.is_set()}


def test_a_submission_for_gamma_wakes_gammas_idle_loop_and_not_betas(daemon: Any) -> None:
    daemon._loop.run_until_complete(
        _on_loop(lambda: daemon._changed_now(Written(frozenset({"gamma"}), events=False))))
    assert _woken(daemon) == {"gamma"}
    assert daemon._witness_wakes[0].is_set()  # witnessing follows every change
    assert daemon._event_writes == 0  # no event written: no stream reads


def test_a_change_of_unknown_scope_wakes_every_loop_and_every_stream(daemon: Any) -> None:
    daemon._loop.run_until_complete(_on_loop(lambda: daemon._changed_now(None)))
    assert _woken(daemon) == {"beta", "gamma"}
    assert daemon._event_writes == 1


def test_an_event_wakes_the_streams_and_no_delivery_loop(daemon: Any) -> None:
    daemon._loop.run_until_complete(
        _on_loop(lambda: daemon._changed_now(Written(frozenset(), events=True))))
    assert _woken(daemon) == set()
    assert daemon._event_writes == 1


def test_a_change_signalled_from_another_thread_wakes_its_loop_too(daemon: Any) -> None:
    async def from_the_database_thread() -> None:
        thread = threading.Thread(target=daemon._changed_now,
                                  args=(Written(frozenset({"beta"}), events=False),))
        thread.start()
        thread.join()
        await asyncio.wait_for(daemon._wakes["beta"].wait(), timeout=10)
    daemon._loop.run_until_complete(from_the_database_thread())
    assert _woken(daemon) == {"beta"}


async def _on_loop(call: Callable[[], None]) -> None:
    call()
    await asyncio.sleep(0)


def test_only_a_change_that_wrote_an_event_wakes_the_event_streams(daemon: Any) -> None:
    async def stream_woken(written: Written) -> bool:
        async def waiter() -> None:
            async with daemon._changed:
                await daemon._changed.wait()
        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)  # waiting now
        daemon._changed_now(written)
        done, _ = await asyncio.wait([task], timeout=0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return bool(done)

    loop = daemon._loop
    assert not loop.run_until_complete(stream_woken(Written(frozenset({"beta"}), False)))
    assert loop.run_until_complete(stream_woken(Written(frozenset(), events=True)))


async def _first_message(store: Store, run: Any, writes: list[int]) -> bytes:
    """The first message of a real event stream (the local API's app over HTTP on
    127.0.0.1) from ``after=0``, with ``run`` as its database thread."""
    async with event_stream(store, run, after=0, event_writes=lambda: writes[0]) as body:
        first = await next_message(body)
        await asyncio.sleep(0.05)  # what the stream does next, had it more to do
    return first


def _stream(store: Store, run: Any, writes: list[int]) -> bytes:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_first_message(store, run, writes))
    finally:
        loop.close()
        store.close()


def test_an_event_committed_while_the_stream_read_is_sent_without_waiting_for_a_ping(
        tmp_path: Path) -> None:
    """The stream's read found nothing, and an event was committed (and signalled) before
    the stream began to wait: it reads again at once instead of sleeping through the signal
    it came too late for (the next ping, 15 s on)."""
    store = Store(tmp_path / "store.db")
    writes = [0]

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        rows = fn(*args, **kwargs)
        if fn == store.events_after and not rows and writes[0] == 0:
            add_event(store, "document_received")  # committed after the read looked...
            writes[0] += 1  # ...and signalled before the stream waits: no wake-up left
        return rows

    first = _stream(store, run, writes)
    assert first.startswith(b"id: 1\nevent: document_received\n"), first


def test_a_stream_that_read_everything_does_not_read_again_until_an_event_is_written(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    add_event(store, "document_received")
    writes, reads = [1], []

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn == store.events_after:
            reads.append(args)
        return fn(*args, **kwargs)

    first = _stream(store, run, writes)
    assert first.startswith(b"id: 1\nevent: document_received\n"), first
    assert reads == [(0, 500)]  # one page, shorter than a page: all there was


def test_whom_a_change_wakes_runs_before_the_caller_hears_its_answer(tmp_path: Path) -> None:
    """The next step of a round trip (the delivery loop that sends what was just queued, the
    stream that tells the local client what just arrived) is woken before the callers'
    answers are written (a 202, a transport answer), not a turn of the loop after them."""
    loop = asyncio.new_event_loop()
    store = Store(tmp_path / "store.db")
    woken = asyncio.Event()
    db = DatabaseThread(store, loop, grouped=lambda fn, args: True,
                        changed=lambda written: woken.set())
    order: list[str] = []

    def received() -> None:
        add_event(store, "document_received")
        db.notify()

    async def waiter() -> None:
        await woken.wait()
        order.append("woken")

    async def caller() -> None:
        await db.run(received)
        order.append("answered")

    async def main() -> None:
        waiting = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        await asyncio.gather(caller(), waiting)

    try:
        loop.run_until_complete(main())
    finally:
        db.stop()
        store.close()
        loop.close()
    assert order == ["woken", "answered"]
