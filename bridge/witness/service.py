"""The witness's HTTP service: ``POST /add-checkpoint`` of C2SP tlog-witness (PROTOCOL.md
§13.3), and ``GET /health``.

The body is read with a bound on its size and its time (a slow or huge body never holds the
witness); each request is judged and recorded in one SQLite transaction on the witness's one
database thread, so two requests for one origin are never checked against the same old state
(the race tlog-witness §add-checkpoint warns of). The answer is sent only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from bridge.core.notes import witness_wire
from bridge.core.notes.witness_wire import Decision
from bridge.home.files import write_file
from bridge.transports.http.limits import BodyTooLarge, BodyTooSlow, read_body
from bridge.witness.home import CosignFn, WitnessHome, cosigner
from bridge.witness.state import WitnessState

log = logging.getLogger("bridge.witness")
BODY_SECONDS = 10.0


def answer(d: Decision) -> web.Response:
    """The HTTP answer tlog-witness prescribes for a decision."""
    if d.status == 200:
        body = b"".join(c.line.line() for c in d.cosignatures)
        return web.Response(status=200, body=body, content_type="text/plain", charset="utf-8")
    if d.status == 409 and d.size is not None:
        return web.Response(status=409, body=f"{d.size}\n".encode(),
                            headers={"Content-Type": witness_wire.SIZE_MEDIA_TYPE})
    return web.Response(status=d.status, text=f"{d.reason}: {d.detail}\n")


def make_app(state: WitnessState, sign: CosignFn, *,
             clock: Callable[[], float] = time.time) -> web.Application:
    db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="witness-db")

    async def add_checkpoint(request: web.Request) -> web.Response:
        try:
            body = await read_body(request, max_bytes=witness_wire.MAX_BODY,
                                   seconds=BODY_SECONDS)
        except BodyTooLarge:
            return web.Response(status=413, text="request body is too large\n")
        except BodyTooSlow:
            return web.Response(status=408, text="request body is too slow\n")
        loop = asyncio.get_running_loop()
        d = await loop.run_in_executor(db, state.judge, body, int(clock()), sign)
        log.info("add-checkpoint %s: %s (%s)", d.status, d.reason,
                 d.checkpoint.origin if d.checkpoint else "-")
        return answer(d)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "time": int(clock())})

    async def close(app: web.Application) -> None:
        db.shutdown(wait=True)

    app = web.Application(client_max_size=witness_wire.MAX_BODY + 1)
    app.router.add_post("/add-checkpoint", add_checkpoint)
    app.router.add_get("/health", health)
    app.on_cleanup.append(close)
    return app


async def serve(home: WitnessHome, host: str, port: int, *,
                port_file: Path | None = None, passphrase: bytes | None = None) -> None:
    """Run the witness until cancelled; the bound port goes to ``port_file`` when given."""
    state = home.state()
    app = make_app(state, cosigner(home.identity(passphrase)))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        if port_file is not None:
            write_file(port_file, f"{bound}\n", replace=True)
        log.info("witness listening on %s:%s", host, bound)
        print(f"witness listening on http://{host}:{bound}", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        state.close()


__all__ = ["answer", "make_app", "serve"]
