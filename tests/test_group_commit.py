"""Group commit (bridge/daemon/dbthread.py): the operations waiting for the database thread run
in one transaction, each inside its own savepoint, with one COMMIT for all. Each stays all or
nothing: a bad one among good ones is refused alone and changes nothing, the good ones are
committed (on disk, seen by another connection), no caller hears before the COMMIT, and a
group that SQLite rolls back answers every one of its operations with the failure instead of
a success that is not on disk.

A real SQLite file, the real ``Store`` and the real thread; the loop is a real asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.core.errors import InputError, StoreUnavailable
from bridge.daemon import dbthread
from bridge.daemon.dbthread import DatabaseThread
from bridge.store.sqlite.store import Store

NOW = 1_700_000_000_000


def kinds_on_disk(path: Path) -> list[str]:
    """The events another connection sees: only what was committed."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return [k for (k,) in conn.execute("SELECT type FROM events ORDER BY id")]


def add(store: Store, kind: str, *, then: Callable[[], None] = lambda: None) -> str:
    """One operation: an event written in its own transaction, then ``then`` inside it."""
    with store.transaction():
        store.add_event(kind, {"n": kind}, NOW)
        then()
    return kind


def not_the_gate(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    """Every call joins a group but the gate's, which runs alone: what queues behind it is
    one group whatever the machine's speed."""
    return getattr(fn, "__name__", "") != "wait"


class Rig:
    """A store on a real file and its database thread; ``queue_behind_gate`` queues calls
    while the thread is held, so that they all wait for it and run as one group."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.store = Store(path)
        self.changes: list[list[str]] = []  # what was on disk at each change signal
        self.rolled_back = 0
        self.written: list[Any] = []  # what each change signal said was written
        self.db = DatabaseThread(self.store, loop, grouped=not_the_gate,
                                 changed=self._changed, rolled_back=self._count_rollback)

    def _changed(self, written: Any) -> None:
        self.changes.append(kinds_on_disk(self.path))
        self.written.append(written)

    def _count_rollback(self) -> None:
        self.rolled_back += 1

    async def queue_behind_gate(self, calls: list[Callable[[], Any]]) -> list[Any]:
        gate = threading.Event()
        held = self.db.run(gate.wait, 10)
        futures = [self.db.run(call) for call in calls]
        gate.set()
        await held
        return await asyncio.gather(*futures, return_exceptions=True)

    def close(self) -> None:
        self.db.stop()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(dbthread, "GROUP_SECONDS", 60.0)  # a slow machine closes no group
    loop = asyncio.new_event_loop()
    made = Rig(tmp_path / "store.db", loop)
    yield made, loop
    made.close()
    loop.close()


def test_a_bad_operation_in_a_group_is_refused_alone_and_the_good_ones_commit(rig: Any
                                                                             ) -> None:
    made, loop = rig

    def bad() -> None:
        def refuse() -> None:
            raise InputError("refused in the middle of its transaction", field="items")
        add(made.store, "bad", then=refuse)

    calls: list[Callable[[], Any]] = [lambda: add(made.store, "good-1"), bad,
                                      lambda: add(made.store, "good-2")]
    groups = made.db.groups
    results = loop.run_until_complete(made.queue_behind_gate(calls))
    assert results[0] == "good-1" and results[2] == "good-2"
    assert isinstance(results[1], InputError)  # its own error, not the group's
    assert made.db.groups == groups + 1  # all three in one group
    # Committed, on disk for another connection; the bad one's write taken back.
    assert kinds_on_disk(made.path) == ["good-1", "good-2"]
    assert made.rolled_back == 0


def test_no_change_is_signalled_before_the_groups_commit(rig: Any) -> None:
    made, loop = rig
    calls: list[Callable[[], Any]] = [
        lambda k=k: (add(made.store, f"e{k}"), made.db.notify())[0] for k in range(3)]
    loop.run_until_complete(made.queue_behind_gate(calls))
    loop.run_until_complete(asyncio.sleep(0))  # let the signal's callback run
    # One signal for the group, and by then every write of it was on disk.
    assert made.changes == [["e0", "e1", "e2"]]


def test_a_group_rolled_back_under_it_answers_every_operation_with_the_failure(rig: Any
                                                                              ) -> None:
    """SQLite rolls a whole transaction back on some failures (a full disk): the operations
    that had succeeded in the group are then not on disk, and must not be answered as if. The
    one that met the failure answers for itself (the engine signs ``unavailable``)."""
    made, loop = rig

    def disk_gives_way() -> str:
        made.store._conn.execute("ROLLBACK")  # what SQLite does by itself on such a failure
        return "signed unavailable"

    calls: list[Callable[[], Any]] = [lambda: add(made.store, "answered-too-early"),
                                      disk_gives_way]
    results = loop.run_until_complete(made.queue_behind_gate(calls))
    assert isinstance(results[0], StoreUnavailable), results
    assert results[1] == "signed unavailable"
    assert kinds_on_disk(made.path) == []
    assert made.rolled_back == 1  # the engine forgets what it cached from the lost group
    # The thread goes on: the next operation commits as usual.
    assert loop.run_until_complete(made.db.run(add, made.store, "after")) == "after"
    assert kinds_on_disk(made.path) == ["after"]


def test_an_operation_that_may_not_be_grouped_runs_alone_with_its_own_commit(tmp_path: Path
                                                                            ) -> None:
    loop = asyncio.new_event_loop()
    store = Store(tmp_path / "store.db")
    alone: list[bool] = []

    def solo() -> None:
        alone.append(not store.group_intact)  # no group open around it
        add(store, "solo")

    db = DatabaseThread(store, loop, grouped=lambda fn, args: fn is not solo and
                        not_the_gate(fn, args), changed=lambda _written: None)
    try:
        gate = threading.Event()
        futures = [db.run(gate.wait, 10), db.run(add, store, "a"), db.run(solo),
                   db.run(add, store, "b")]
        gate.set()
        loop.run_until_complete(asyncio.gather(*futures))
        assert alone == [True]
        assert kinds_on_disk(tmp_path / "store.db") == ["a", "solo", "b"]  # in queue order
    finally:
        db.stop()
        store.close()
        loop.close()


def test_a_key_statement_envelope_and_a_key_change_never_join_a_group(tmp_path: Path) -> None:
    """Their key files are written after their commit: in a group, that would come before the
    group's COMMIT, and a kill between the two would leave files the store does not know."""
    from types import SimpleNamespace

    from bridge.core.errors import PeerError
    from bridge.engine.kinds import KIND_CHUNK, KIND_KEY_REVOCATION, KIND_KEY_ROTATION

    def op(*args: Any) -> None: ...

    names = ("submit_document", "acknowledge", "tried", "count_attempt", "pending_rows",
             "next_pending", "peer_event", "record_limit_refusal", "document_detail", "item",
             "receive_envelope", "rotate_key", "revoke_key")
    exchange = SimpleNamespace(**{n: (lambda n=n: (lambda *a: n))() for n in names})
    store = SimpleNamespace(events_after=op, last_event_id=op)
    may_join = dbthread.groupable(exchange, store)  # type: ignore[arg-type]

    def envelope(kind: str) -> tuple[Any, ...]:
        return (b"body", (SimpleNamespace(kind=kind), b"", b"", b""))

    assert may_join(exchange.receive_envelope, envelope(KIND_CHUNK))
    assert may_join(exchange.submit_document, ({},))
    assert may_join(store.events_after, (0,))
    for kind in (KIND_KEY_ROTATION, KIND_KEY_REVOCATION):
        assert not may_join(exchange.receive_envelope, envelope(kind))
    assert not may_join(exchange.receive_envelope, (b"body", PeerError("bad", reason="x")))
    assert not may_join(exchange.receive_envelope, (b"body",))  # not decoded: unknown kind
    assert not may_join(exchange.rotate_key, ())
    assert not may_join(exchange.revoke_key, ({},))


def test_a_read_at_the_head_of_the_queue_takes_no_write_lock_and_does_not_wait_for_writes(
        tmp_path: Path) -> None:
    """A read that finds no group running starts none (no BEGIN IMMEDIATE, no COMMIT), and its
    answer does not wait for the commit of the writes queued behind it; the same read behind a
    write joins that write's group (it may have read it) and is answered after its COMMIT."""
    loop = asyncio.new_event_loop()
    path = tmp_path / "store.db"
    store = Store(path)
    seen: list[tuple[bool, list[str]]] = []  # (a transaction was open, what it read)

    def look() -> list[str]:
        kinds = [k for _, k, _ in store.events_after(0)]
        seen.append((store._conn.in_transaction, kinds))
        return kinds

    answered: list[str] = []
    db = DatabaseThread(store, loop, grouped=not_the_gate, changed=lambda _written: None,
                        reads=lambda fn, args: fn is look)

    async def scenario() -> None:
        gate, hold = threading.Event(), threading.Event()

        def write_held() -> str:
            hold.wait(10)  # the write's group stays open until the read's answer is in
            return add(store, "w1")

        futures = [db.run(gate.wait, 10), db.run(look), db.run(write_held), db.run(look)]
        futures[1].add_done_callback(lambda f: (answered.append("read"), hold.set()))
        futures[2].add_done_callback(lambda f: answered.append("write"))
        gate.set()
        await asyncio.gather(*futures)

    try:
        groups = db.groups
        loop.run_until_complete(asyncio.wait_for(scenario(), 20))
        assert seen == [(False, []), (True, ["w1"])]  # alone, then inside the write's group
        assert answered[0] == "read"  # before the group behind it was even finished
        assert db.groups == groups + 1  # the lone read made no group
        assert kinds_on_disk(path) == ["w1"]
    finally:
        db.stop()
        store.close()
        loop.close()


def test_only_calls_that_read_skip_the_group() -> None:
    """Reading without a transaction is only for calls that write nothing: a write would
    then commit by itself, outside the group and its rules."""
    from types import SimpleNamespace

    def op(*args: Any) -> None: ...

    names = ("submit_document", "acknowledge", "tried", "count_attempt", "pending_rows",
             "next_pending", "peer_event", "record_limit_refusal", "document_detail", "item",
             "receive_envelope", "rotate_key", "revoke_key")
    exchange = SimpleNamespace(**{n: (lambda n=n: (lambda *a: n))() for n in names})
    store = SimpleNamespace(events_after=op, last_event_id=lambda: 0)
    reads = dbthread.read_only(exchange, store)  # type: ignore[arg-type]
    may_join = dbthread.groupable(exchange, store)  # type: ignore[arg-type]
    readers = [exchange.pending_rows, store.events_after, store.last_event_id]
    assert all(reads(fn, ()) and may_join(fn, ()) for fn in readers)
    writers = [getattr(exchange, n) for n in names if n != "pending_rows"]
    assert not any(reads(fn, ()) for fn in writers)


def test_reads_queued_together_run_without_a_transaction_and_are_answered_in_one_hop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.new_event_loop()
    store = Store(tmp_path / "store.db")
    settled: list[int] = []  # how many calls each hop back to the loop answered
    real_settle = dbthread._settle

    def counting(calls: list[Any], changed: Any, change: Any) -> None:
        settled.append(len(calls))
        real_settle(calls, changed, change)

    monkeypatch.setattr(dbthread, "_settle", counting)
    in_transaction: list[bool] = []

    def look() -> None:
        in_transaction.append(store._conn.in_transaction)

    db = DatabaseThread(store, loop, grouped=not_the_gate, changed=lambda _written: None,
                        reads=lambda fn, args: fn is look)
    try:
        gate = threading.Event()
        futures = [db.run(gate.wait, 10), db.run(look), db.run(look), db.run(look),
                   db.run(add, store, "after")]
        gate.set()
        loop.run_until_complete(asyncio.wait_for(asyncio.gather(*futures), 20))
        assert in_transaction == [False, False, False]
        assert settled == [1, 3, 1]  # the gate, the three reads together, the write
        assert kinds_on_disk(tmp_path / "store.db") == ["after"]
    finally:
        db.stop()
        store.close()
        loop.close()
