"""The direct HTTP courier (``bridge.engine.ports.Courier``): POSTs our envelopes to the
peer's endpoint and turns each HTTP exchange into an ``Arrival``: the answer's bytes, or why
there are none. The status code goes no further than the ``note`` (for the log): the engine
decides on the signed answer alone (PROTOCOL.md §8.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus

import aiohttp

from bridge.core import codec
from bridge.core.printable import said
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.home.tls import format_tls_fingerprint
from bridge.transports.http.endpoint import ENVELOPE_TYPE
from bridge.transports.http.limits import BodyTooLarge, read_bounded

MAX_ANSWER_BYTES = codec.SMALL_LIMITS.max_bytes


class HttpCourier:
    """POSTs to ``url``/v1/envelopes, one request per envelope, each answered at once; the
    requests of a batch are in flight together."""

    def __init__(self, *, url: str, request_timeout: float,
                 tls_fingerprint: str | None = None) -> None:
        self.url = url.rstrip("/") + "/v1/envelopes"
        # The pinned SHA-256 of the peer's TLS certificate is the whole trust: aiohttp then uses
        # a context that checks no CA and no host name, and compares the certificate's digest
        # after the handshake, before a byte of the request is sent.
        self.ssl: aiohttp.Fingerprint | bool = (
            aiohttp.Fingerprint(bytes.fromhex(tls_fingerprint)) if tls_fingerprint else True)
        self.timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._arrivals: asyncio.Queue[Arrival] = asyncio.Queue()
        self._posting: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._posting):
            task.cancel()
        await asyncio.gather(*self._posting, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, batch: Sequence[Outgoing]) -> None:
        """Each envelope POSTed at once, in order, each on a connection of its own if need be
        (several in flight, PROTOCOL.md §8.7); each answer is queued as it comes."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for env in batch:
            task = asyncio.create_task(self._post_then_queue(env))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
            await asyncio.sleep(0)  # let it start its request before the next one's

    async def _post_then_queue(self, env: Outgoing) -> None:
        await self._arrivals.put(await self._post(env))

    async def receive(self) -> Arrival:
        return await self._arrivals.get()

    async def _post(self, env: Outgoing) -> Arrival:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

        def failed(result: Carried, detail: str) -> Arrival:
            return Arrival(seq=env.seq, digest=env.digest, result=result, detail=detail)

        try:
            async with self._session.post(self.url, data=env.data, ssl=self.ssl,
                                          headers={"Content-Type": ENVELOPE_TYPE}) as resp:
                # A transport answer is a small signed statement (PROTOCOL §8.3, decoded with
                # the SMALL limits): a longer one is never read.
                body = await read_bounded(resp.content, MAX_ANSWER_BYTES, 16 * 1024)
                status = resp.status
        except BodyTooLarge:
            return failed(Carried.ANSWER_TOO_LARGE, f"answer over {MAX_ANSWER_BYTES} bytes")
        except aiohttp.ServerFingerprintMismatch as exc:
            return failed(Carried.NOT_PINNED, pin_mismatch_detail(exc))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # aiohttp's words can carry the peer's reason phrase: bounded and escaped.
            return failed(Carried.UNREACHABLE, f"{type(exc).__name__}: {said(exc)}")
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            # Over our rate at the peer: refused before anything was decided, with no signed
            # answer to check (README, "Security limits"): a try like one that found no one,
            # followed by the usual backoff, not a failed answer (and its warning) each time.
            return failed(Carried.BUSY, "HTTP 429: over our rate at the peer")
        return Arrival(seq=env.seq, digest=env.digest, result=Carried.ANSWERED, body=body,
                       note=f"HTTP {status}")


def pin_mismatch_detail(exc: aiohttp.ServerFingerprintMismatch) -> str:
    # In the form bridge keys show, tls show and peer add print, so the two can be compared.
    return (f"TLS certificate of {exc.host}:{exc.port} has SHA-256 "
            f"{format_tls_fingerprint(exc.got.hex())}, pinned "
            f"{format_tls_fingerprint(exc.expected.hex())}; nothing sent. If the peer changed its "
            "certificate, compare the new fingerprint out of band and pin it with "
            "bridge peer add --tls-fingerprint --replace")
