"""What a change committed goes with it: its events (``Written.new_events``) and the envelopes
it queued (``Written.new_rows``; the delivery loop's side is in test_sender_looks.py). The
daemon holds the latest events (bridge/daemon/recent.py) so that an event stream up to date
with them writes them without reading them back from the store. Held is only what is known to
be on disk and to follow what is held without a gap; anything else is read from the store, as
before.

A real SQLite file, the real ``Store``, the real database thread and the real local API over
HTTP on 127.0.0.1.
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
from bridge.store.sqlite import database
from bridge.store.sqlite.store import Store, Written

NOW = 1_700_000_000_000


def add_event(store: Store, kind: str) -> None:
    with store.transaction():
        store.add_event(kind, {"kind": kind}, NOW)


def refused_after_an_event(store: Store) -> None:
    with store.transaction():
        store.add_event("refused", {}, NOW)
        raise ValueError("refused in the middle")


def told(store: Store) -> list[tuple[int, str]]:
    return [(event_id, kind) for event_id, kind, _ in store.take_written().new_events]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(tmp_path / "store.db")
    yield made
    made.close()


# ------------------------------------------------------------ what the store tells


def test_an_event_rolled_back_is_never_told_and_the_next_one_takes_its_id(
        store: Store) -> None:
    add_event(store, "first")
    with pytest.raises(ValueError):
        refused_after_an_event(store)
    add_event(store, "second")
    assert told(store) == [(1, "first"), (2, "second")]
    assert [row[:2] for row in store.events_after(0)] == [(1, "first"), (2, "second")]


def test_events_in_a_group_of_which_one_operation_failed_are_told_as_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbthread, "GROUP_SECONDS", 60.0)
    loop = asyncio.new_event_loop()
    store = Store(tmp_path / "store.db")
    said: list[Written | None] = []
    db = DatabaseThread(store, loop, grouped=lambda fn, args: fn.__name__ != "wait",
                        changed=said.append)
    gate = threading.Event()

    def signalled(op: Callable[[], None]) -> Callable[[], None]:
        return lambda: (op(), db.notify())[0]

    try:
        held = db.run(gate.wait, 10)
        futures = [db.run(signalled(lambda: add_event(store, "first"))),
                   db.run(signalled(lambda: refused_after_an_event(store))),
                   db.run(signalled(lambda: add_event(store, "second")))]
        gate.set()
        loop.run_until_complete(asyncio.gather(held, *futures, return_exceptions=True))
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        db.stop()
        loop.close()
    assert len(said) == 1 and said[0] is not None
    assert [e[:2] for e in said[0].new_events] == [(1, "first"), (2, "second")]
    assert [row[:2] for row in store.events_after(0)] == [(1, "first"), (2, "second")]
    store.close()


def test_a_group_whose_commit_fails_tells_that_events_came_but_not_which(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.begin_group()
    add_event(store, "lost")

    def refused(conn: Any) -> None:  # as a COMMIT the disk refuses: rolled back, raised
        rollback(conn)
        raise OSError("the disk refused")
    rollback = database.rollback
    monkeypatch.setattr(database, "commit", refused)
    with pytest.raises(OSError):
        store.commit_group()
    written = store.take_written()
    assert written.events and written.new_events == ()
    assert store.events_after(0) == []


def test_events_asked_for_inside_a_transaction_are_told_only_after_its_commit(
        store: Store) -> None:
    with store.transaction():
        store.add_event("pending", {}, NOW)
        inside = store.take_written()
    assert inside.events and inside.new_events == ()  # not known yet to be on disk
    assert told(store) == [(1, "pending")]


def queue_envelope(store: Store, seq: int) -> None:
    store.insert_outbox(peer="beta", seq=seq, msg_id=bytes(16), digest=bytes([seq]) * 32,
                        envelope=b"sealed %d" % seq, kind="chunk", doc=None, first=None,
                        n=None, now=NOW)


def test_an_envelope_rolled_back_is_never_told_and_the_one_committed_is_as_it_is_read(
        store: Store) -> None:
    with pytest.raises(ValueError), store.transaction():
        queue_envelope(store, 1)
        raise ValueError("refused in the middle")
    with store.transaction():
        queue_envelope(store, 1)
    written = store.take_written()
    assert written.new_rows == tuple(store.pending_rows("beta", 0, 10))
    assert [row.seq for row in written.new_rows] == [1]


def test_a_rewind_is_told_as_such_so_the_loop_looks(store: Store) -> None:
    with store.transaction():
        queue_envelope(store, 1)
        store.finish_outbox("beta", 1, "delivered", b"receipt", NOW)
    store.take_written()
    with store.transaction():
        store.rewind_outbox("beta", 1)
    written = store.take_written()
    assert written.rewound == frozenset({"beta"}) and written.new_rows == ()


# ------------------------------------------------------------ what the daemon holds


def _written(*ids: int) -> Written:
    return Written(frozenset(), events=True,
                   new_events=tuple((i, "document_received", "{}") for i in ids))


def test_held_events_are_given_to_a_stream_that_is_up_to_date_with_them() -> None:
    recent = RecentEvents()
    recent.told(_written(4, 5))
    recent.told(_written(6))
    assert [e[0] for e in recent.after(3, 500) or []] == [4, 5, 6]
    assert [e[0] for e in recent.after(5, 500) or []] == [6]
    assert recent.after(6, 500) == []  # nothing after the newest: wait, read nothing
    assert [e[0] for e in recent.after(3, 2) or []] == [4, 5]


def test_a_stream_behind_what_is_held_reads_the_store() -> None:
    recent = RecentEvents(keep=2)
    recent.told(_written(4, 5, 6))  # 4 no longer held
    assert recent.after(2, 500) is None
    assert recent.after(3, 500) is None
    assert [e[0] for e in recent.after(4, 500) or []] == [5, 6]
    assert recent.after(9, 500) is None  # an id never given out: the store answers


@pytest.mark.parametrize("change", [None, Written(frozenset(), events=True), _written(8),
                                    _written(7, 9)],
                         ids=["scope-unknown", "events-not-carried", "gap", "gap-inside"])
def test_a_change_whose_events_are_not_all_known_forgets_what_was_held(
        change: Written | None) -> None:
    recent = RecentEvents()
    recent.told(_written(5, 6))
    recent.told(change)
    assert recent.after(6, 500) is None  # event 7 may be on disk: read the store


def test_a_change_without_events_keeps_what_was_held() -> None:
    recent = RecentEvents()
    recent.told(_written(5, 6))
    recent.told(Written(frozenset({"beta"}), events=False))
    assert recent.after(6, 500) == []


# ------------------------------------------------------------ the stream


async def _messages(store: Store, recent: RecentEvents, run: Any, after: int,
                    count: int) -> list[bytes]:
    """The first ``count`` messages of a real event stream from ``after``."""
    async with event_stream(store, run, after=after, event_writes=lambda: 0,
                            held_events=recent.after) as body:
        return [await next_message(body) for _ in range(count)]


def _stream(store: Store, recent: RecentEvents, after: int, count: int
            ) -> tuple[list[bytes], list[tuple[Any, ...]]]:
    reads: list[tuple[Any, ...]] = []

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn == store.events_after:
            reads.append(args)
        return fn(*args, **kwargs)

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_messages(store, recent, run, after, count)), reads
    finally:
        loop.close()


def test_a_stream_up_to_date_writes_held_events_without_reading_the_store(
        store: Store) -> None:
    add_event(store, "document_submitted")
    add_event(store, "document_received")
    recent = RecentEvents()
    recent.told(store.take_written())
    messages, reads = _stream(store, recent, after=0, count=2)
    assert messages[0].startswith(b"id: 1\nevent: document_submitted\n"), messages
    assert messages[1] == (b'id: 2\nevent: document_received\n'
                           b'data: {"kind": "document_received"}\n\n')
    assert reads == []


def test_a_stream_whose_events_were_forgotten_reads_them_from_the_store(store: Store) -> None:
    add_event(store, "document_received")
    recent = RecentEvents()
    recent.told(store.take_written())
    add_event(store, "document_acknowledged")
    recent.told(None)  # a change of unknown scope: event 2 is not held
    messages, reads = _stream(store, recent, after=1, count=1)
    assert messages[0].startswith(b"id: 2\nevent: document_acknowledged\n"), messages
    assert reads == [(1, 500)]
