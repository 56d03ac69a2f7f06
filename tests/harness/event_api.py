"""The local API's event stream alone, served over HTTP on 127.0.0.1 from a real store, with
the test's own stand-in for the database thread (``run``): what it reads, and when, is the
test's to see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web

from bridge.engine.metrics import Metrics
from bridge.local.api import HeldEvents, LocalApi
from bridge.store.sqlite.store import Store


@asynccontextmanager
async def event_stream(store: Store, run: Any, *, after: int,
                       event_writes: Callable[[], int],
                       held_events: HeldEvents | None = None
                       ) -> AsyncIterator[aiohttp.StreamReader]:
    """The body of ``GET /v1/events?after=...``, read as it comes."""
    exchange: Any = SimpleNamespace(store=store,
                                    config=SimpleNamespace(max_body_bytes=1 << 20))
    api = LocalApi(exchange=exchange, run=run, metrics=Metrics(),
                   events_changed=asyncio.Condition(), peer_status=dict, max_body=1 << 20,
                   event_writes=event_writes, held_events=held_events)
    runner = web.AppRunner(api.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/v1/events?after={after}") as resp:
            yield resp.content
    finally:
        api.stopping.set()
        await runner.cleanup()


async def next_message(body: aiohttp.StreamReader) -> bytes:
    return await asyncio.wait_for(body.readuntil(b"\n\n"), timeout=60)
