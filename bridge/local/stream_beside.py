"""A large msgpack stream's batches checked beside the daemon, on the cores it leaves idle.

The daemon's Python runs on one core at a time, and a streamed roster or manifest spends most
of its time on work that needs nothing of the store: decoding its items, checking them
(schemas, dates, DNA) and making their signed entries (``engine.stream_batch``). Here the
stream is cut into its values' bytes as it comes (``msgpack_frames``: C speed, nothing
decoded), a batch of them goes to a process beside the daemon (``CheckBeside``: the daemon's
``checkers``), which decodes, checks and makes the entries, and the database thread only
stages what comes back, in stream order. Batch k is staged while batches k + 1, k + 2 are
checked and the caller writes the next ones.

The rules are the same as on the daemon's own path (``stream._staged``): nothing is visible
until the whole document is committed; the first bad item of the stream is the one named,
whichever batch is checked first; a stream that breaks off leaves nothing behind. A stream
of fewer than ``CheckBeside.min_items`` items (or any batch while no process is ready) is
checked by the daemon itself, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from bridge.core.errors import InputError
from bridge.engine.exchange import Exchange
from bridge.engine.ports import RunInDb
from bridge.engine.stream_batch import CheckedBatch
from bridge.engine.streaming import Streamed
from bridge.local.msgpack_frames import MsgpackFrames, decode_values
from bridge.local.packed_batch import check_packed

BATCH_BYTES = 8 << 20
"""A batch is cut at ``STREAM_BATCH`` items or this many bytes, whichever comes first: what is
held for one batch does not grow with its items' size."""


class CheckBeside(Protocol):
    """Runs ``packed_batch.check_packed`` somewhere else, answering what it returns or
    raises."""

    min_items: int  # streams of fewer items are checked by the daemon itself
    ahead: int  # batches checked at once

    def warm(self) -> None:
        """A large stream begins: be ready soon (start what takes a moment to start)."""

    def ready(self) -> bool:
        """Can a batch be checked beside now? Until then batches are checked here."""

    def __call__(self, fn: Callable[..., CheckedBatch], *args: Any) -> Awaitable[CheckedBatch]:
        ...


async def _frames(blocks: AsyncIterator[bytes], frames: MsgpackFrames) -> AsyncIterator[bytes]:
    async for block in blocks:
        for value in frames.feed(block):
            yield value
    frames.finish()


async def staged_beside(blocks: AsyncIterator[bytes], exchange: Exchange, run: RunInDb,
                        beside: CheckBeside, *, max_value: int, batch: int) -> dict[str, Any]:
    """``stream._staged`` of a msgpack document stream (its body's ``blocks``), its batches
    checked beside."""
    values = _frames(blocks, MsgpackFrames(max_value, _place))
    staged: Streamed | None = None
    order = _InOrder(exchange, run)
    try:
        first = await anext(values, None)
        if first is None:
            raise InputError("an empty stream: the first line is the document's header",
                             field="$", code="bad_stream")
        staged = await run(exchange.begin_stream, decode_values(first, lambda n: "$")[0])
        order.staged = staged
        far = staged.rules.count >= beside.min_items
        if far:
            beside.warm()
        packed: list[bytes] = []
        size, at = 0, 0  # bytes in ``packed``; the stream index of its first item
        while True:
            try:
                value = await anext(values)
            except StopAsyncIteration:
                break
            except InputError:  # a value that is no item: an earlier item's refusal first
                if packed:  # the items read before it, not yet a batch
                    await order.add(staged, beside, far, at, packed)
                await order.drain()
                raise
            packed.append(value)
            size += len(value)
            if len(packed) == batch or size >= BATCH_BYTES:
                await order.add(staged, beside, far, at, packed)
                at, packed, size = at + len(packed), [], 0
                while len(order.checking) > beside.ahead:
                    await order.settle()
        if packed:
            await order.add(staged, beside, far, at, packed)
        await order.drain()
        result: dict[str, Any] = await run(exchange.finish_stream, staged)
        staged = None  # committed (or answered for the one committed before)
        return result
    finally:
        order.forget()
        if staged is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(run(exchange.abort_stream, staged))


def _checked(staged: Streamed, beside: CheckBeside, far: bool, first: int, packed: list[bytes]
             ) -> asyncio.Future[CheckedBatch] | list[Any]:
    """Batch ``first`` checked beside (a future of its entries) or, near, its items decoded
    here for the database thread to check (``Exchange.stream_items``)."""
    data = b"".join(packed)
    if not (far and beside.ready()):  # a short stream, or processes still starting
        return decode_values(data, lambda n: f"items[{first + n}]")
    return asyncio.ensure_future(beside(check_packed, staged.rules, first,
                                        staged.salts(first, len(packed)), data))


class _InOrder:
    """Batches being checked, staged one after another in stream order; the first refusal of
    the stream (a check's, or a stage's: an id staged twice) is the one raised."""

    def __init__(self, exchange: Exchange, run: RunInDb) -> None:
        self.exchange, self.run = exchange, run
        self.staged: Streamed | None = None
        self.checking: deque[asyncio.Future[CheckedBatch] | list[Any]] = deque()
        self.staging: asyncio.Future[Any] | None = None

    async def add(self, staged: Streamed, beside: CheckBeside, far: bool, first: int,
                  packed: list[bytes]) -> None:
        """The next batch, checked beside or (near) decoded here; a value decoded here that
        is no item waits for the batches before it to say their refusals first."""
        try:
            self.checking.append(_checked(staged, beside, far, first, packed))
        except InputError:
            await self.drain()
            raise

    async def settle(self) -> None:
        """The oldest batch checked, then handed to the database thread once the batch
        before it is staged."""
        job = self.checking.popleft()
        try:
            done = job if isinstance(job, list) else await job
        except InputError:
            await self._staged()  # the batch before it may hold an earlier bad item
            raise
        await self._staged()
        step = self.exchange.stream_items if isinstance(done, list) else \
            self.exchange.stage_stream_items
        self.staging = asyncio.ensure_future(self.run(step, self.staged, done))

    async def _staged(self) -> None:
        if self.staging is not None:
            staging, self.staging = self.staging, None
            await staging

    async def drain(self) -> None:
        while self.checking:
            await self.settle()
        await self._staged()

    def forget(self) -> None:
        """What is left of a stream that failed: nothing more is staged (``abort`` is queued
        after whatever runs), and every outcome is taken (asyncio logs one never taken)."""
        for job in (*self.checking, self.staging):
            if isinstance(job, asyncio.Future):
                if not job.done():
                    job.cancel()
                elif not job.cancelled():
                    job.exception()
        self.checking.clear()
        self.staging = None


def _place(n: int) -> str:
    """Value ``n`` of the stream (0: its header) as a refusal names it."""
    return "$" if n == 0 else f"items[{n - 1}]"


__all__ = ["BATCH_BYTES", "CheckBeside", "staged_beside"]
