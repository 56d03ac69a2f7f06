"""The whole store check beside the daemon's work (``bridge/engine/check_pass.py``): after a
start that checked only what changed since the last complete check, every entry is read again
on a read-only connection of its own, in its own thread, a slice at a time with a pause
between, so the database thread and the loop keep serving. What it finds raises the alarm and
makes the store read-only at once; a sound pass leaves a new mark.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bridge.engine.check_pass import CheckPass
from bridge.engine.exchange import Exchange
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.check import CheckRows

log = logging.getLogger("bridge.daemon")

SLICE_PAGES = 8
"""Pages of entries (``check.PAGE`` each) read in one slice: a fraction of a second."""
PAUSE_SECONDS = 0.02
"""The pause between two slices: the loop and the database thread have the interpreter."""

RunInDb = Callable[..., Awaitable[Any]]


async def check_beside(exchange: Exchange, run_in_db: RunInDb, db_path: Path, *,
                       pages: int = SLICE_PAGES, pause: float = PAUSE_SECONDS) -> None:
    """One whole pass, if the start left one due; then nothing more (returns)."""
    if not await run_in_db(exchange.check_pass_due):
        return
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1, thread_name_prefix="bridge-store-check")
    conn: list[sqlite3.Connection] = []
    try:
        work = await loop.run_in_executor(pool, _open, db_path, conn)
        await run_in_db(exchange.check_pass_begun)
        log.info("store check beside the work: the documents up to row %d", work.upto)
        while True:
            found, done = await loop.run_in_executor(pool, work.step, pages)
            if found:
                await run_in_db(exchange.found_store_faults, found)
            if done:
                break
            await asyncio.sleep(pause)
        await run_in_db(exchange.check_pass_done, work)
    finally:
        for c in conn:  # stopped mid-slice: the statement under way ends now
            c.interrupt()
        pool.submit(_close, conn)
        pool.shutdown(wait=False)


def _open(db_path: Path, conn: list[sqlite3.Connection]) -> CheckPass:
    conn.append(audit_db.connect(db_path))
    return CheckPass(CheckRows(conn[0]))


def _close(conn: list[sqlite3.Connection]) -> None:
    for c in conn:
        c.close()


__all__ = ["PAUSE_SECONDS", "SLICE_PAGES", "check_beside"]
