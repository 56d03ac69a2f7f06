"""A document submitted as a stream: ``POST /v1/documents`` with ``Content-Type:
application/x-ndjson`` (schemas/local-api.yaml, ``DocumentStream``).

The body is newline-delimited JSON, sent chunked if the caller likes: the first line is the
header (a submission without ``items``, with their ``count``), each following line one item.
No body-size limit applies (a 1,000,000-item manifest is about 250 MB of JSON); each line is
held to ``MAX_STREAM_LINE`` bytes and read with the rules of any JSON body (``json_text``).
Or, with ``Content-Type: application/vnd.msgpack``, the same header and items as msgpack
values one after another, each held to the same bound and the same rules
(``msgpack_values``): cheaper to write and to read than a JSON text a line.
Items go to the database thread a batch at a time, where they are checked, signed and staged
(``bridge.engine.streaming``); the document is committed, and answered 202, only after the
last line. A bad line or item refuses the whole document, naming it (``items[n]``); a stream
that breaks off leaves nothing behind.

A listed acknowledgement streams the same way (``POST /v1/documents/{id}/acks``, ``AckStream``):
a header line (an acknowledgement without ``items``; ``{}``), then one item a line, checked
and staged a batch at a time (``bridge.engine.ack_stream``), signed and committed whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.core.errors import InputError
from bridge.engine.exchange import Exchange
from bridge.engine.ports import RunInDb
from bridge.local.json_text import parse_json
from bridge.local.msgpack_values import MSGPACK, MsgpackValues
from bridge.local.stream_beside import CheckBeside, staged_beside

NDJSON = "application/x-ndjson"
STREAM_TYPES = (NDJSON, MSGPACK)  # a streamed body: NDJSON, or msgpack values one after another
MAX_STREAM_LINE = 4 << 20  # one item: up to 128 fields of up to 4,096 characters
STREAM_BATCH = 2048  # items handed to the database thread at once
STREAM_IDLE = 60.0  # seconds a stream may send nothing before it is given up
_READ = 1 << 16


async def _blocks(request: web.Request) -> AsyncIterator[bytes]:
    """The body as it comes. A stream that sends nothing for ``STREAM_IDLE`` seconds is given
    up (its caller may have gone without a word: a peer end closed before its request was
    read is not always told to the reader)."""
    while True:
        try:
            async with asyncio.timeout(STREAM_IDLE):
                block = await request.content.read(_READ)
        except TimeoutError:
            raise InputError(f"the stream sent nothing for {STREAM_IDLE} s", field="$",
                             code="stream_stalled") from None
        if not block:
            return
        yield block


async def _lines(request: web.Request, max_line: int) -> AsyncIterator[bytes]:
    """Each non-empty line of the body, without its end of line."""
    buf = bytearray()
    async for block in _blocks(request):
        buf += block
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if end > start:
                yield bytes(buf[start:end])
            start = end + 1
        del buf[:start]
        if len(buf) > max_line:
            raise InputError(f"a line of the stream is over {max_line} bytes", field="$",
                             code="too_large")
    if buf.strip():
        yield bytes(buf)


async def _json_values(request: web.Request, max_line: int) -> AsyncIterator[Any]:
    """NDJSON: the header line, then ``items[n]``, each read as any JSON body is."""
    n = -1
    async for line in _lines(request, max_line):
        yield parse_json(line.strip() if n < 0 else line, field=_place(n))
        n += 1


async def _msgpack_values(request: web.Request, max_value: int) -> AsyncIterator[Any]:
    """A msgpack stream: the header, then ``items[n]``, one value after another."""
    values = MsgpackValues(max_value, lambda n: _place(n - 1))
    async for block in _blocks(request):
        for value in values.feed(block):
            yield value
    values.finish()


def _place(n: int) -> str:
    """The n-th item of a stream (-1: its header) as an error names it."""
    return "$" if n < 0 else f"items[{n}]"


def stream_values(request: web.Request, max_line: int) -> AsyncIterator[Any]:
    """The values of a streamed body, decoded as its content type says."""
    if request.content_type == MSGPACK:
        return _msgpack_values(request, max_line)
    return _json_values(request, max_line)


async def submit_stream(request: web.Request, exchange: Exchange, run: RunInDb, *,
                        max_line: int, beside: CheckBeside | None = None) -> dict[str, Any]:
    """Read, check and stage the stream; commit the document whole, or leave nothing. A
    msgpack stream's batches are checked ``beside`` the daemon where it has processes for it
    (``stream_beside``)."""
    if beside is not None and request.content_type == MSGPACK:
        return await staged_beside(_blocks(request), exchange, run, beside,
                                   max_value=max_line, batch=STREAM_BATCH)
    return await _staged(request, run, max_line, Stages(
        begin=exchange.begin_stream, add=exchange.stream_items, finish=exchange.finish_stream,
        abort=exchange.abort_stream, what="the document's header"))


async def ack_stream(request: web.Request, exchange: Exchange, run: RunInDb, doc_id: str, *,
                     max_line: int) -> dict[str, Any]:
    """A listed acknowledgement of ``doc_id`` as a stream (``AckStream``): its header line,
    then one entry a line; signed and committed whole, or nothing is."""
    return await _staged(request, run, max_line, Stages(
        begin=functools.partial(exchange.begin_ack_stream, doc_id),
        add=exchange.ack_stream_items, finish=exchange.finish_ack_stream,
        abort=exchange.abort_ack_stream, what="the acknowledgement's header"))


@dataclass(frozen=True, kw_only=True)
class Stages:
    """The engine's four steps of one kind of stream (all on the database thread)."""

    begin: Callable[[Any], Any]
    add: Callable[[Any, list[Any]], None]
    finish: Callable[[Any], dict[str, Any]]
    abort: Callable[[Any], None]
    what: str  # what the first line is


async def _staged(request: web.Request, run: RunInDb, max_line: int, steps: Stages
                  ) -> dict[str, Any]:
    """The header, then each item ``items[n]`` handed over a batch at a time; the whole
    committed at the end, or what was staged dropped (refused, or the caller went away).

    Batch k is checked and staged on the database thread while batch k + 1 is read and
    decoded here (and the caller goes on writing it): the two overlap instead of taking turns.
    The database thread runs calls in the order they are queued, so batches are staged in
    stream order, and ``abort`` after the last of them."""
    values = stream_values(request, max_line)
    staged: Any = None
    adding: asyncio.Future[Any] | None = None  # the batch on the database thread, if any
    try:
        first = await anext(values, None)
        if first is None:
            raise InputError(f"an empty stream: the first line is {steps.what}",
                             field="$", code="bad_stream")
        staged = await run(steps.begin, first)
        batch: list[Any] = []
        while True:
            try:
                item = await anext(values)
            except StopAsyncIteration:
                break
            except InputError:  # a value that is no item: an earlier item's refusal first
                await _earlier_refusal(adding)
                if batch:  # the items read before it, not yet a batch
                    await run(steps.add, staged, batch)
                raise
            batch.append(item)
            if len(batch) == STREAM_BATCH:
                if adding is not None:
                    pending, adding = adding, None
                    await pending
                adding, batch = asyncio.ensure_future(run(steps.add, staged, batch)), []
        if adding is not None:
            pending, adding = adding, None
            await pending
        if batch:
            await run(steps.add, staged, batch)
        result: dict[str, Any] = await run(steps.finish, staged)
        staged = None  # committed (or answered for the one committed before): nothing staged
        return result
    finally:
        if adding is not None:
            _forget(adding)
        if staged is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(run(steps.abort, staged))


async def _earlier_refusal(adding: asyncio.Future[Any] | None) -> None:
    """A bad value read while the batch before it was still being staged: that batch's own
    refusal, if it has one, names an earlier item and is raised instead, as it was when each
    batch was staged before the next was read (the first bad item of the stream is named)."""
    if adding is not None:
        await adding


def _forget(adding: asyncio.Future[Any]) -> None:
    """A batch left behind by a stream that failed: not run if it has not started (``abort``,
    queued after it, drops what it staged either way), its outcome taken if it has one (an
    outcome never taken is logged by asyncio as an error)."""
    if not adding.done():
        adding.cancel()
    elif not adding.cancelled():
        adding.exception()


__all__ = ["MAX_STREAM_LINE", "MSGPACK", "NDJSON", "STREAM_BATCH", "STREAM_IDLE",
           "STREAM_TYPES", "ack_stream", "stream_values", "submit_stream"]
