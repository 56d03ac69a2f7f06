"""Processes beside the daemon that check a large streamed submission's batches
(``bridge.local.stream_beside``): the daemon's Python holds one core at a time, and a roster
of 100,000 persons spends most of its time in checks that need nothing of the store.

The processes are started when the first large stream comes (a daemon that never takes one
never has them), with ``spawn``: a fresh interpreter, not a fork of one with threads and open
files. They hold no key, no store and no socket: each call gets a batch's bytes, its salts and
the header's rules, and answers the batch's entries or the refusal of its first bad item. If a
process dies, the batch is checked on a thread here instead and the pool is started again at
the next batch; nothing of the stream is lost or checked twice. Where no process can be
started at all (no POSIX semaphores, a process limit), that is said once and the daemon checks
every batch itself. If the daemon dies (even by SIGKILL, with no word to them), they end too
(``checker_process``): none is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bridge.daemon.checker_process import end_with
from bridge.engine.chunk_ahead import PreparedChunk, prepare_chunk
from bridge.engine.metrics import Metrics
from bridge.engine.stream_batch import CheckedBatch
from bridge.home.config import Config
from bridge.local.stream import STREAM_BATCH

log = logging.getLogger("bridge.daemon")

MIN_ITEMS = 4 * STREAM_BATCH
"""A stream of fewer items is checked by the daemon itself: starting a process costs about as
much as checking a few thousand items."""


def check_processes(cores: int | None = None, *, setting: int | None = None) -> int:
    """How many: ``[local] check_processes`` if set; else none on one core (nothing to
    spare), two on more (the stage, on the database thread, keeps pace with about two)."""
    if setting is not None:
        return setting
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return 0 if cores < 2 else 2


class Checkers:
    """``stream_beside.CheckBeside``: a pool of ``processes`` started at first use."""

    def __init__(self, processes: int, min_items: int = MIN_ITEMS,
                 metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.processes, self.min_items = processes, min_items
        self.ahead = processes  # batches checked at once, one a process
        self._pool: ProcessPoolExecutor | None = None
        self._cannot: OSError | None = None  # why processes cannot be started here, if so
        self._warming: list[Future[int]] | None = None  # one call a process, to start them

    @classmethod
    def of(cls, config: Config, metrics: Metrics) -> Checkers:
        """The daemon's, as ``[local] check_processes`` says (None: ``check_processes()``)."""
        return cls(check_processes(setting=config.check_processes), metrics=metrics)

    def warm(self) -> None:
        """Start the processes, if they are not (a large stream begins): each takes a moment
        to start, during which the stream's batches are checked in the daemon (``ready``)."""
        if self._cannot is not None or self._warming is not None or not self.processes:
            return
        try:
            pool = self._started()
            self._warming = warming = [pool.submit(os.getpid) for _ in range(self.processes)]
        except OSError as exc:
            self._refused(exc)
            return
        for future in warming:
            future.add_done_callback(lambda _: self._say_ready(warming))

    def _say_ready(self, warming: list[Future[int]]) -> None:
        """/metrics: how many have started (on the pool's thread, as each answers)."""
        if self.metrics is not None and warming is self._warming:
            self.metrics.set_gauge("check_processes_ready", sum(
                1 for f in warming if f.done() and not f.cancelled() and f.exception() is None))

    def ready(self) -> bool:
        """Have all the processes started (answered once)? A start that failed is forgotten,
        and the next ``warm`` tries again."""
        warming = self._warming
        if warming is None or not all(f.done() for f in warming):
            return False
        if any(f.exception() is not None for f in warming):
            self._drop()
            return False
        return True

    def _refused(self, exc: OSError) -> None:
        log.warning("no process can be started to check streamed submissions beside the "
                    "daemon (%s): the daemon checks them itself", exc)
        self._cannot = exc
        self._drop()

    def beside(self) -> Checkers | None:
        """Itself, or None with no process to run (the daemon checks every stream)."""
        return self if self.processes > 0 else None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=end_with, initargs=(os.getpid(),))
            log.info("started %d processes to check large streamed submissions beside the "
                     "daemon", self.processes)
        return self._pool

    async def __call__(self, fn: Callable[..., CheckedBatch], *args: Any) -> CheckedBatch:
        loop = asyncio.get_running_loop()
        if self._cannot is None:
            try:
                done = await loop.run_in_executor(self._started(), fn, *args)
                if self.metrics is not None:
                    self.metrics.inc("stream_batches_beside")
                return done
            except BrokenProcessPool:
                log.warning("a process checking a streamed submission ended; its batch is "
                            "checked in the daemon, and the processes are started again")
                self._drop()
                self.warm()
            except OSError as exc:  # no process can be started here (no semaphores, limits)
                self._refused(exc)
        return await loop.run_in_executor(None, fn, *args)

    def can_prepare(self) -> bool:
        """``transports.ahead.PrepareBeside``: are the processes ready? If not, they are
        started (a large chunk arrived), and meanwhile the database thread does its work."""
        if self.ready():
            return True
        self.warm()
        return False

    async def prepare(self, payload: bytes) -> PreparedChunk | None:
        """A received chunk's pure work (``chunk_ahead.prepare_chunk``) in a process; None if
        it refused the chunk or the process ended (its turn on the database thread does it
        all then, and says why)."""
        try:
            prepared = await asyncio.get_running_loop().run_in_executor(
                self._started(), prepare_chunk, payload)
        except BrokenProcessPool:
            log.warning("a process preparing a received chunk ended; the chunk is taken in "
                        "by the daemon, and the processes are started again")
            self._drop()
            return None
        except OSError as exc:
            self._refused(exc)
            return None
        if self.metrics is not None:
            self.metrics.inc("chunks_prepared_beside")
        return prepared

    def _drop(self, *, wait: bool = False) -> None:
        """The pool let go of (told to end; ``wait``: and waited for), none ready."""
        self._warming = None
        if self.metrics is not None:
            self.metrics.set_gauge("check_processes_ready", 0)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        """At the daemon's stop: the processes are told to end, and waited for."""
        self._drop(wait=True)


__all__ = ["MIN_ITEMS", "Checkers", "check_processes"]
