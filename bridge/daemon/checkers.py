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
every batch itself. If the daemon dies (even by
SIGKILL, with no word to them), they end too (``checker_process``): none is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bridge.daemon.checker_process import end_with
from bridge.engine.stream_batch import CheckedBatch
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

    def __init__(self, processes: int, min_items: int = MIN_ITEMS) -> None:
        self.processes, self.min_items = processes, min_items
        self.ahead = processes  # batches checked at once, one a process
        self._pool: ProcessPoolExecutor | None = None
        self._cannot: OSError | None = None  # why processes cannot be started here, if so

    @classmethod
    def of(cls, setting: int | None) -> Checkers:
        """The daemon's, as ``[local] check_processes`` says (None: ``check_processes()``)."""
        return cls(check_processes(setting=setting))

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
                return await loop.run_in_executor(self._started(), fn, *args)
            except BrokenProcessPool:
                log.warning("a process checking a streamed submission ended; its batch is "
                            "checked in the daemon, and the processes are started again")
                self._drop()
            except OSError as exc:  # no process can be started here (no semaphores, limits)
                log.warning("no process can be started to check streamed submissions beside "
                            "the daemon (%s): the daemon checks them itself", exc)
                self._cannot = exc
                self._drop()
        return await loop.run_in_executor(None, fn, *args)

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """At the daemon's stop: the processes are told to end, and waited for."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["MIN_ITEMS", "Checkers", "check_processes"]
