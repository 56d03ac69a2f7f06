"""The daemon's one database thread, with group commit.

Every ``Exchange`` call runs on this thread, one after another, so store transactions never
interleave and the event loop never blocks on SQLite. Each commit costs an fsync
(``synchronous=FULL``, DESIGN.md "Reliability"), and under load requests used to queue behind
each other's fsyncs. So the operations waiting when the thread comes to them run as one
*group*: one ``BEGIN IMMEDIATE``, each operation's own transactions savepoints inside it
(``bridge.store.sqlite.database.savepoint``: a failing operation takes back only its own
writes and gets its own error), then one COMMIT, one fsync, for all of them. No caller is
answered, and no change is signalled (``notify``), before that COMMIT: a 202 still means on
disk, and ``kill -9`` after any answer loses nothing. If the COMMIT fails, or SQLite rolls the
group back by itself (a full disk), every operation of the group that had succeeded is
answered ``StoreUnavailable`` instead: none of it is on disk.

Only calls named groupable join a group (``grouped``): the small, frequent ones whose every
effect outside the store is harmless if the group then fails (a metric, a wake-up). Anything
that writes files after its commit (a key change), streams a document in several calls, or
closes the store runs alone, exactly as before: its own transactions, its own commits.

A call that only reads (``reads``: the event stream's next events, a delivery loop's look at
its outbox) and finds no group running starts none: it runs alone, without ``BEGIN
IMMEDIATE`` (no write lock, no COMMIT) and is answered at once, not after the commit of the
writes queued behind it. It sees only committed rows then, so its answer needs no commit.
Inside a group it joins as before and waits for the COMMIT: it may have read the group's
writes. Reads queued one behind the other run together and are answered in one hop.

A change is signalled with what it wrote (``Written``, the store's account of every outbox
insert or rewind and every event since the last signal; a group's, all of its operations'):
the daemon wakes only the delivery loops whose outboxes gained envelopes and, only when an
event was written, the event streams. A waiter woken for a write that was then rolled back
looks and finds nothing; none misses a write, since the store counts each where it is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bridge.core.beside import Pending
from bridge.core.errors import StoreUnavailable
from bridge.engine.exchange import Exchange
from bridge.engine.kinds import KIND_CHECKPOINT, KIND_CHUNK
from bridge.engine.metrics import Metrics
from bridge.store.sqlite.store import Store, Written

log = logging.getLogger("bridge.daemon")

MAX_GROUP = 64
"""Operations in one group at most."""
SIGNING_THREADS = 1
"""Threads that make signatures beside the database thread: each step joins the signature it
started before it starts another (and before the next step runs), so one is ever under way."""
GROUP_SECONDS = 0.025
"""No operation joins a group that has been running this long: an operation queued behind a
long one (a large document) waits for that one alone, not for everything queued after it."""


@dataclass(eq=False)
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]
    grouped: bool
    reads: bool = False
    result: Any = None
    error: BaseException | None = field(default=None)


class DatabaseThread:
    """Runs calls on one thread, in the order they were queued; consecutive groupable ones
    as groups (above). ``grouped`` says which calls may join a group."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, *,
                 grouped: Callable[[Callable[..., Any], tuple[Any, ...]], bool],
                 changed: Callable[[Written | None], None],
                 rolled_back: Callable[[], None] = lambda: None,
                 metrics: Metrics | None = None, name: str = "bridge-db",
                 reads: Callable[[Callable[..., Any], tuple[Any, ...]], bool] | None = None
                 ) -> None:
        self.store = store
        self.loop = loop
        self._grouped = grouped
        self._reads = reads or (lambda fn, args: False)
        self._changed = changed
        self._rolled_back = rolled_back
        self.metrics = metrics or Metrics()
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._held: _Call | None = None  # taken from the queue, not groupable: runs next
        self._in_group = False
        self._change_due = False
        self.groups = 0  # groups committed (tests, metrics)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """``fn(*args, **kwargs)`` on the database thread, answered after its commit. Queued
        when called (loop thread): the order callers call in is the order it runs in (the
        peer endpoint relies on it: PROTOCOL.md §8.7)."""
        future = self.loop.create_future()
        self._queue.put(_Call(fn, args, kwargs, future, self._grouped(fn, args),
                              self._reads(fn, args)))
        return future

    def notify(self) -> None:
        """Something changed (database thread): said at once outside a group, after the
        group's COMMIT inside one, never before the change is on disk; with what was written
        (``Written``) to say whom it concerns."""
        if self._in_group:
            self._change_due = True
        else:
            self._changed(self.store.take_written())

    def stop(self) -> None:
        """No more calls: the thread ends once those queued have run."""
        self._queue.put(None)
        self._thread.join()

    # ------------------------------------------------------------ the thread

    def _next(self, *, block: bool) -> _Call | None:
        # ``_held``: taken from the queue by a group or a run of reads it could not join.
        if self._held is not None:
            call, self._held = self._held, None
            return call
        try:
            return self._queue.get(block=block)
        except queue.Empty:
            return None

    def _serve(self) -> None:
        while (call := self._next(block=True)) is not None:
            if call.future.cancelled():
                continue  # its caller went away before it started: as run_in_executor does
            try:
                if call.reads:
                    self._reads_together(call)
                elif call.grouped:
                    self._group(call)
                else:
                    self._alone(call)
            except Exception:  # never the thread's end: every later call would wait forever
                log.exception("the database thread failed between operations")

    def _alone(self, call: _Call) -> None:
        self._invoke(call)
        self._answer([call])

    def _reads_together(self, first: _Call) -> None:
        """``first`` and the reads queued right behind it, with no transaction, answered
        together (one hop back to the loop); the first call that is not a read is held."""
        calls = [first]
        self._invoke(first)
        while len(calls) < MAX_GROUP and (call := self._next(block=False)) is not None:
            if not call.reads:
                self._held = call
                break
            if not call.future.cancelled():
                calls.append(call)
                self._invoke(call)
        self._answer(calls)

    def _invoke(self, call: _Call) -> None:
        try:
            call.result = call.fn(*call.args, **call.kwargs)
        except BaseException as exc:  # handed to its caller, as run_in_executor does
            call.error = exc

    def _gather(self, first: _Call, started: float) -> list[_Call]:
        """``first`` and the groupable calls after it, run in one group; the first call that
        may not join is held for after the group."""
        calls = [first]
        self._invoke(first)
        while (self.store.group_intact and len(calls) < MAX_GROUP
               and time.monotonic() - started < GROUP_SECONDS):
            call = self._next(block=False)
            if call is None:
                break
            if not call.grouped:
                self._held = call
                break
            if call.future.cancelled():
                continue
            calls.append(call)
            self._invoke(call)
        return calls

    def _group(self, first: _Call) -> None:
        try:
            self.store.begin_group()
        except Exception as exc:  # the write lock or the disk refused: nothing ran
            first.error = exc
            self._answer([first])
            return
        self._in_group = True
        try:
            calls = self._gather(first, time.monotonic())
            committed = self._finish(calls)
        finally:
            self._in_group = False
        if committed:
            self.groups += 1
            self.metrics.inc("store_groups")
            self.metrics.inc("store_grouped_operations", len(calls))
        self._answer(calls)

    def _finish(self, calls: list[_Call]) -> bool:
        """COMMIT the group (True); if it is lost, every call that had succeeded is answered
        with why instead of its result. Rolled back by SQLite under the last call (no call
        joins after that), that call met the failure itself and its own answer stands (a
        signed ``unavailable``, say): only those before it lost what they had done."""
        lost: BaseException | None = None
        losers = calls
        if not self.store.group_intact:
            with contextlib.suppress(Exception):  # the disk that refused may refuse this too
                self.store.abandon_group()
            lost = StoreUnavailable("the store could not be written (the transaction was "
                                    "rolled back); nothing of this request was recorded")
            losers = calls[:-1]
        else:
            try:
                self.store.commit_group()
            except Exception as exc:
                lost = exc
        if lost is None:
            return True
        log.error("a group of %d operations was not committed: %s", len(calls), lost)
        self._rolled_back()
        for call in losers:
            if call.error is None:
                call.error, call.result = lost, None
        return False

    def _answer(self, calls: list[_Call]) -> None:
        """The change signalled, and then every caller answered, on the loop thread: both only
        after the commit (``_settle`` says why in that order)."""
        change = self.store.take_written() if self._change_due else None
        self._change_due = False
        self.loop.call_soon_threadsafe(_settle, calls, self._changed, change)


T = TypeVar("T")


class SigningPool:
    """The engine's ``Beside`` in the daemon: a signature the database thread's step will
    need, started where its bytes are known and made on another thread while the step goes
    on (ML-DSA signing releases the GIL, so it takes the second core). Only pure work runs
    here: nothing on these threads touches the store, so the database thread's discipline
    (every store call on it, in order) holds."""

    def __init__(self, threads: int = SIGNING_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="bridge-sign")

    def __call__(self, fn: Callable[[], T]) -> Pending[T]:
        return _Begun(fn, self._pool.submit(fn))

    def close(self) -> None:
        self._pool.shutdown()


@dataclass(frozen=True)
class _Begun(Generic[T]):
    """Work handed to the pool. Joined before a pool thread took it up (a busy machine did
    not run that thread in time), it is taken back and done by the joiner: waiting for a
    thread to be scheduled would only add that wait to the step."""

    fn: Callable[[], T]
    future: Future[T]

    def result(self) -> T:
        if self.future.cancel():
            return self.fn()
        return self.future.result()


def groupable(exchange: Exchange, store: Store
              ) -> Callable[[Callable[..., Any], tuple[Any, ...]], bool]:
    """Which calls may share a group's commit: the frequent small ones whose only effects
    outside the store are a metric or a wake-up. An envelope is, but for a key statement's:
    its key files are written after its commit (``bridge.engine.keys``)."""
    ex = exchange
    grouped = {ex.submit_document, ex.acknowledge, ex.tried, ex.count_attempt,
               ex.pending_rows, ex.next_pending, ex.peer_event, ex.record_limit_refusal,
               ex.document_detail, ex.item, store.events_after, store.last_event_id}
    receive = ex.receive_envelope

    def may_join(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        if fn == receive:  # (data, parsed): the header decoded beside the thread
            parsed = args[1] if len(args) > 1 else None
            return isinstance(parsed, tuple) and parsed[0].kind in (KIND_CHUNK, KIND_CHECKPOINT)
        return fn in grouped
    return may_join


def read_only(exchange: Exchange, store: Store
              ) -> Callable[[Callable[..., Any], tuple[Any, ...]], bool]:
    """The calls that only read: at the head of the queue they run without a group (above).
    Every one of them is also groupable, so that behind a write it joins that write's group."""
    reads = {exchange.pending_rows, store.events_after, store.last_event_id}
    return lambda fn, args: fn in reads


def _settle(calls: list[_Call], changed: Callable[[Written | None], None],
            change: Written | None) -> None:  # loop thread
    # The change first: whoever it wakes (the delivery loop that sends what was just queued,
    # the event stream that tells the local client what just arrived) then runs before the
    # callers' answers are written (the 202, the transport answer), not a turn of the loop
    # after them. That is the next step of a round trip; the answers are not.
    if change is not None:
        changed(change)
    for call in calls:
        if call.future.cancelled():
            continue
        if call.error is not None:
            call.future.set_exception(call.error)
        else:
            call.future.set_result(call.result)


__all__ = ["DatabaseThread", "SigningPool", "groupable", "read_only"]
