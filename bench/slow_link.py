"""A TCP forwarder on loopback that delays every byte by a fixed time each way, in order: the
network between a party and a mediator's broker far away, for the benchmarks (never a test,
never the daemon's code). Unlimited bandwidth; only the latency is added.

    with SlowLink(("127.0.0.1", 4222), delay=0.025) as port:
        ...  # connect to 127.0.0.1:port: a 50 ms round trip to the broker
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType


class SlowLink:
    """Listens on 127.0.0.1 (a free port, given by ``__enter__``) and forwards each connection
    to ``target``, every chunk of bytes held ``delay`` seconds before it is passed on."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> int:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        return started.result(10)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await held.get()
                if not data:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()

        sending = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                held.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
            await sending
        finally:
            sending.cancel()
