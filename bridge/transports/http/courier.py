"""The direct HTTP courier (``bridge.engine.ports.Courier``): POSTs our envelopes to the
peer's endpoint and turns each HTTP exchange into an ``Arrival``: the answer's bytes, or why
there are none. The status code goes no further than the ``note`` (for the log): the engine
decides on the signed answer alone (PROTOCOL.md §8.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from types import SimpleNamespace

import aiohttp

from bridge.client_wire import retry_after_seconds
from bridge.core import codec
from bridge.core.printable import said
from bridge.engine.metrics import Metrics
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.home.tls import format_tls_fingerprint
from bridge.transports.http.endpoint import ENVELOPE_TYPE
from bridge.transports.http.limits import BodyTooLarge, read_bounded

MAX_ANSWER_BYTES = codec.SMALL_LIMITS.max_bytes
DEFAULT_PAUSE = 1.0
"""Seconds the courier holds a peer's sends after a 429 that names no delay-seconds."""
MIN_PAUSE = 0.1
"""The shortest pause after a 429, whatever its Retry-After says."""
TURN_SECONDS = 0.1
"""How long one paced send has the turn at most before the next may go (``Pacing.turn``)."""
KEPT_RETRIES = 8
"""Times an envelope is sent again at once after a kept connection was found closed (each
failure drops that connection from the pool, so the last one goes on a new connection)."""


class Pacing:
    """How we send to a peer that answered 429 (over our rate at its endpoint, with a
    Retry-After: RFC 9110 §10.2.3, RFC 6585 §4). We do not know its bucket, only when it said
    to come back, so:

    - every send to it waits until that has passed (one pause for all, ``hold``): each send it
      refused meanwhile would spend nothing but its refusal log and our time;
    - from the 429 until one more Retry-After has passed with no other, sends go one at a
      time, the lowest sequence number first (``turn``): the peer's bucket refills at its own
      rate, and what it has saved up is spent in chain order, each next one sent when the
      one before was answered, until the next 429. All at once, a window would spend it on
      whichever came first, the rest refused and the overtaking ones answered with a gap
      (PROTOCOL.md §8.7), each sent again: a 429 per envelope per pause.
    """

    def __init__(self) -> None:
        self.until = 0.0  # the event loop's time when sends may go again
        self.calm_after = 0.0  # ... and when they may go all at once again
        self._over: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sending = False  # one send has its turn
        self._turns: list[tuple[int, int, asyncio.Future[None]]] = []  # (seq, order, waiter)
        self._order = itertools.count()

    def hold(self, seconds: float) -> None:
        """Pause sends for ``seconds`` from now (unless a pause runs past that already)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        self.calm_after = max(self.calm_after, until + seconds)
        if until <= self.until:
            return
        self.until = until
        if self._over is None or self._over.done():
            self._over = loop.create_future()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(until, self._end)

    def _end(self) -> None:
        self._timer = None
        if self._over is not None and not self._over.done():
            self._over.set_result(None)

    def paced(self) -> bool:
        return asyncio.get_running_loop().time() < self.calm_after

    async def passed(self) -> None:
        """Return once no pause runs (at once when none does)."""
        while self._over is not None and not self._over.done():
            await asyncio.shield(self._over)

    @contextlib.asynccontextmanager
    async def turn(self, seq: int) -> AsyncIterator[None]:
        """One send at a time, the lowest ``seq`` waiting first, once the pause has passed.
        The turn passes on when the answer comes, or after ``TURN_SECONDS`` if it has not:
        the peer may hold a request for an earlier one still to come (PROTOCOL.md §8.7), and
        the ones after it must not wait behind that in turn, each for the whole hold."""
        if self._sending:
            await self._wait_turn(seq)
        self._sending = True
        try:
            await self.passed()
        except asyncio.CancelledError:
            self._hand_on()
            raise
        while self._turns and self._turns[0][0] < seq:
            # One before it was refused and came to wait while this one waited for the pause
            # with the turn: it goes first.
            self._hand_on()
            await self._wait_turn(seq)
        passed_on = False

        def pass_on() -> None:
            nonlocal passed_on
            if not passed_on:
                passed_on = True
                self._hand_on()

        timer = asyncio.get_running_loop().call_later(TURN_SECONDS, pass_on)
        try:
            yield
        finally:
            timer.cancel()
            pass_on()

    async def _wait_turn(self, seq: int) -> None:
        """Wait until the one sending hands the turn to ``seq``."""
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._turns, (seq, next(self._order), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._hand_on()  # handed the turn as it was cancelled: the next one's
            raise

    def _hand_on(self) -> None:
        """The turn to the lowest seq waiting, once no pause runs: one refused meanwhile
        (its 429 ended its turn) waits again and goes before the ones after it."""
        if self._over is not None and not self._over.done():
            self._over.add_done_callback(lambda _: self._hand_on())
            return
        while self._turns:
            waiter = heapq.heappop(self._turns)[2]
            if not waiter.done():
                waiter.set_result(None)  # the turn passes to it: still sending
                return
        self._sending = False


async def _kept_connection(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                           params: object) -> None:
    ctx.trace_request_ctx["kept"] = True  # the dict _post_once passes


def _tracing() -> aiohttp.TraceConfig:
    """Tells each request whether it went out on a kept connection (aiohttp's own signal)."""
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_kept_connection)
    return trace


class HttpCourier:
    """POSTs to ``url``/v1/envelopes, one request per envelope, each answered at once; the
    requests of a batch are in flight together."""

    def __init__(self, *, url: str, request_timeout: float,
                 tls_fingerprint: str | None = None, metrics: Metrics | None = None) -> None:
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
        # How long the peer's pacing may hold one envelope before it is handed back as BUSY (the
        # delivery loop then waits out the rest): within the request timeout, so that the
        # loop's deadline for its answer (twice the timeout) is never what ends the hold.
        self.hold_limit = request_timeout / 2
        self.pacing = Pacing()
        self.metrics = metrics or Metrics()

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
        for env in batch:
            task = asyncio.create_task(self._post_then_queue(env))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
            await asyncio.sleep(0)  # let it start its request before the next one's

    async def _post_then_queue(self, env: Outgoing) -> None:
        await self._arrivals.put(await self._post(env))

    async def receive(self) -> Arrival:
        return await self._arrivals.get()

    def let_go(self, seq: int, digest: bytes) -> None:
        """Nothing to keep: a late response is dropped by the loop, and the envelope sent
        again gets its answer again (a duplicate's, PROTOCOL.md §8.2)."""

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout,
                                                  trace_configs=[_tracing()])
        return self._session

    async def _post(self, env: Outgoing) -> Arrival:
        """One envelope carried, paced as the peer's 429s ask (``Pacing``): sent again after a
        429 while its pause ends within ``hold_limit``, and after a kept connection that was
        closed under it (``_post_kept``)."""
        started = asyncio.get_running_loop().time()
        while True:
            if self.pacing.paced():
                async with self.pacing.turn(env.seq):
                    arrival, retry_after = await self._post_kept(env)
            else:
                arrival, retry_after = await self._post_kept(env)
            if arrival.result is not Carried.BUSY or self._held_too_long(retry_after, started):
                return arrival

    def _held_too_long(self, retry_after: float | None, started: float) -> bool:
        """A 429 counted and its pause begun; True when it would hold the envelope past
        ``hold_limit`` (it is then handed back as BUSY, and comes back to wait its turn)."""
        self.metrics.inc("delivery_busy")
        # A Retry-After of 0 would make this a loop of requests the peer refuses.
        self.pacing.hold(DEFAULT_PAUSE if retry_after is None else max(MIN_PAUSE, retry_after))
        return self.pacing.until - started > self.hold_limit

    async def _post_kept(self, env: Outgoing) -> tuple[Arrival, float | None]:
        """The arrival (and a 429's Retry-After). An envelope POST is idempotent: a duplicate
        is answered with the receipt of the first (PROTOCOL.md §8.5). So when the peer closed a
        kept connection as the request went out on it (its idle timer: RFC 9112 §9.3.1),
        nothing is lost by sending it again at once on another (RFC 9110 §9.2.2); that is
        no failed try and costs no backoff. A new connection that fails is a failure."""
        tries = 0
        while (answered := await self._post_once(env, again=tries < KEPT_RETRIES)) is None:
            tries += 1
            self.metrics.inc("delivery_resent_kept_closed")
        return answered

    @staticmethod
    def _unreachable(env: Outgoing, exc: BaseException) -> tuple[Arrival, None]:
        # aiohttp's words can carry the peer's reason phrase: bounded and escaped.
        return Arrival(seq=env.seq, digest=env.digest, result=Carried.UNREACHABLE,
                       detail=f"{type(exc).__name__}: {said(exc)}"), None

    async def _post_once(self, env: Outgoing, *, again: bool = True
                         ) -> tuple[Arrival, float | None] | None:
        """One POST: its arrival (and a 429's Retry-After); with ``again``, None when a kept
        connection was closed before any of the answer came (``_post_kept`` sends it again)."""
        session = self._open_session()
        seen: dict[str, bool] = {"kept": False, "answer": False}

        def failed(result: Carried, detail: str) -> tuple[Arrival, float | None]:
            return Arrival(seq=env.seq, digest=env.digest, result=result, detail=detail), None

        try:
            async with session.post(self.url, data=env.data, ssl=self.ssl,
                                    headers={"Content-Type": ENVELOPE_TYPE},
                                    trace_request_ctx=seen) as resp:
                seen["answer"] = True
                # A transport answer is a small signed statement (PROTOCOL §8.3, decoded with
                # the SMALL limits): a longer one is never read.
                body = await read_bounded(resp.content, MAX_ANSWER_BYTES, 16 * 1024)
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # Closed or reset with not a byte of the answer, on a connection kept from before
            # (a connector's error is a new connection that could not be made).
            if again and seen["kept"] and not seen["answer"] and not isinstance(
                    exc, aiohttp.ClientConnectorError):
                return None
            return self._unreachable(env, exc)
        except BodyTooLarge:
            return failed(Carried.ANSWER_TOO_LARGE, f"answer over {MAX_ANSWER_BYTES} bytes")
        except aiohttp.ServerFingerprintMismatch as exc:
            return failed(Carried.NOT_PINNED, pin_mismatch_detail(exc))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._unreachable(env, exc)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            # Over our rate at the peer: refused before anything was decided, with no signed
            # answer to check (README, "Security limits"). Its Retry-After pauses every send
            # to the peer (``Pacing``), not a failed answer (and its warning) each time.
            return (Arrival(seq=env.seq, digest=env.digest, result=Carried.BUSY,
                            detail="HTTP 429: over our rate at the peer"),
                    retry_after_seconds(retry_after))
        return Arrival(seq=env.seq, digest=env.digest, result=Carried.ANSWERED, body=body,
                       note=f"HTTP {status}"), None


def pin_mismatch_detail(exc: aiohttp.ServerFingerprintMismatch) -> str:
    # In the form bridge keys show, tls show and peer add print, so the two can be compared.
    return (f"TLS certificate of {exc.host}:{exc.port} has SHA-256 "
            f"{format_tls_fingerprint(exc.got.hex())}, pinned "
            f"{format_tls_fingerprint(exc.expected.hex())}; nothing sent. If the peer changed its "
            "certificate, compare the new fingerprint out of band and pin it with "
            "bridge peer add --tls-fingerprint --replace")
