"""The witness's HTTP service: ``POST /add-checkpoint`` of C2SP tlog-witness (PROTOCOL.md
§13.3), and ``GET /health``; and the run that serves it, and the relay binding beside it
(``bridge/witness/relay.py``, §13.8).

The body is read with a bound on its size and its time (a slow or huge body never holds the
witness); each request is judged and recorded in one SQLite transaction on the witness's one
database thread, so two requests for one origin are never checked against the same old state
(the race tlog-witness §add-checkpoint warns of). The answer is sent only after the commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bridge.core.notes import witness_wire
from bridge.core.notes.witness_wire import Decision
from bridge.core.printable import printable
from bridge.home.files import write_file
from bridge.transports.http.limits import BodyTooLarge, BodyTooSlow, read_body
from bridge.witness.home import CosignFn, WitnessHome, cosigner
from bridge.witness.state import WitnessState

if TYPE_CHECKING:
    from bridge.witness.relay import RelaySettings

log = logging.getLogger("bridge.witness")
BODY_SECONDS = 10.0


def answer_parts(d: Decision) -> tuple[int, str, bytes]:
    """The status code, Content-Type and body tlog-witness prescribes for a decision: what the
    HTTP binding sends, and the relay binding byte for byte (PROTOCOL.md §13.8)."""
    if d.status == 200:
        return 200, "text/plain; charset=utf-8", b"".join(c.line.line() for c in d.cosignatures)
    if d.status == 409 and d.size is not None:
        return 409, witness_wire.SIZE_MEDIA_TYPE, f"{d.size}\n".encode()
    return d.status, "text/plain; charset=utf-8", f"{d.reason}: {d.detail}\n".encode()


def answer(d: Decision) -> web.Response:
    """The HTTP answer tlog-witness prescribes for a decision."""
    status, ctype, body = answer_parts(d)
    return web.Response(status=status, body=body, headers={"Content-Type": ctype})


class Judge:
    """Each request judged and recorded on the witness's one database thread, whichever
    binding brought it (HTTP, the relay, or both at once), so that two requests for one origin
    are never checked against the same old state."""

    def __init__(self, state: WitnessState, sign: CosignFn,
                 clock: Callable[[], float] = time.time) -> None:
        self.state, self.sign, self.clock = state, sign, clock
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="witness-db")

    async def __call__(self, body: bytes, via: str) -> Decision:
        loop = asyncio.get_running_loop()
        d = await loop.run_in_executor(self.db, self.state.judge, body, int(self.clock()),
                                       self.sign)
        log.info("add-checkpoint %s: %s (%s, via %s)", d.status, d.reason,
                 printable(d.checkpoint.origin) if d.checkpoint else "-", via)
        return d

    def close(self) -> None:
        self.db.shutdown(wait=True)


def make_app(state: WitnessState, sign: CosignFn, *,
             clock: Callable[[], float] = time.time, judge: Judge | None = None
             ) -> web.Application:
    judged = judge or Judge(state, sign, clock)

    async def add_checkpoint(request: web.Request) -> web.Response:
        try:
            body = await read_body(request, max_bytes=witness_wire.MAX_BODY,
                                   seconds=BODY_SECONDS)
        except BodyTooLarge:
            return web.Response(status=413, text="request body is too large\n")
        except BodyTooSlow:
            return web.Response(status=408, text="request body is too slow\n")
        return answer(await judged(body, "http"))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "time": int(judged.clock())})

    async def close(app: web.Application) -> None:
        if judge is None:
            judged.close()

    app = web.Application(client_max_size=witness_wire.MAX_BODY + 1)
    app.router.add_post("/add-checkpoint", add_checkpoint)
    app.router.add_get("/health", health)
    app.on_cleanup.append(close)
    return app


async def serve(home: WitnessHome, listen: tuple[str, int] | None, *,
                relay: RelaySettings | None = None, port_file: Path | None = None,
                ready_file: Path | None = None, passphrase: bytes | None = None) -> None:
    """Run the witness until cancelled: over HTTP on ``listen``, through the mediator's relay
    (``relay``), or both, one state and one judge for the two. The bound port goes to
    ``port_file``; ``ready_file`` (JSON) is written once every binding is serving."""
    from bridge.witness.relay import RelayWitness

    state = home.state()
    identity = home.identity(passphrase)
    judge = Judge(state, cosigner(identity))
    runner: web.AppRunner | None = None
    on_relay: RelayWitness | None = None
    try:
        bound: int | None = None
        if listen is not None:
            runner = web.AppRunner(make_app(state, judge.sign, judge=judge), access_log=None)
            bound = await _listen(runner, *listen, port_file)
        if relay is not None:
            on_relay = RelayWitness(relay, identity.party, judge)
            await on_relay.start()
            print(f"witness serving {on_relay.subject} on the relay {relay.url}", flush=True)
        if ready_file is not None:
            write_file(ready_file, json.dumps({"port": bound, "relay": on_relay.subject
                                               if on_relay else None}) + "\n", replace=True)
        await asyncio.Event().wait()
    finally:
        if on_relay is not None:
            await on_relay.close()
        if runner is not None:
            await runner.cleanup()
        judge.close()
        state.close()


async def _listen(runner: web.AppRunner, host: str, port: int, port_file: Path | None) -> int:
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    if port_file is not None:
        write_file(port_file, f"{bound}\n", replace=True)
    log.info("witness listening on %s:%s", host, bound)
    print(f"witness listening on http://{host}:{bound}", flush=True)
    return bound


__all__ = ["Judge", "answer", "answer_parts", "make_app", "serve"]
