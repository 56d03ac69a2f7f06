"""The HTTP courier over real HTTP on 127.0.0.1: each POST becomes an ``Arrival`` naming the
envelope it answers, with the answer's bytes and the status only as a note; no answer, or one
too large to be a transport answer, says why instead."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.engine.metrics import Metrics
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.transports.http.courier import MAX_ANSWER_BYTES, HttpCourier
from bridge.transports.http.endpoint import ENVELOPE_TYPE


def _env(seq: int) -> Outgoing:
    return Outgoing(peer="beta", seq=seq, digest=bytes([seq]) * 32, data=b"envelope %d" % seq)


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/envelopes", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def test_answers_come_back_as_bytes_with_the_status_only_as_a_note() -> None:
    seen: list[tuple[str, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((request.content_type, body))
        status = 409 if body.endswith(b"2") else 200
        return web.Response(status=status, body=b"signed " + body)

    async def main() -> list[Arrival]:
        runner, url = await _serve(answer)
        courier = HttpCourier(url=url, request_timeout=10)
        try:
            await courier.send([_env(1), _env(2)])
            return [await courier.receive(), await courier.receive()]
        finally:
            await courier.close()
            await runner.cleanup()

    first, second = asyncio.run(main())
    assert seen == [(ENVELOPE_TYPE, b"envelope 1"), (ENVELOPE_TYPE, b"envelope 2")]
    assert (first.seq, first.digest, first.result, first.body, first.note) == (
        1, bytes([1]) * 32, Carried.ANSWERED, b"signed envelope 1", "HTTP 200")
    assert (second.seq, second.result, second.note) == (
        2, Carried.ANSWERED, "HTTP 409")


def test_an_answer_too_large_is_not_read_and_no_answer_says_why() -> None:
    async def huge(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"x" * (MAX_ANSWER_BYTES + 1))

    with socket.socket() as s:  # a port nothing listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"

        async def main() -> list[Arrival]:
            runner, url = await _serve(huge)
            out: list[Arrival] = []
            for target in (url, closed):
                courier = HttpCourier(url=target, request_timeout=10)
                try:
                    await courier.send([_env(3)])
                    out.append(await courier.receive())
                finally:
                    await courier.close()
            await runner.cleanup()
            return out

        large, refused = asyncio.run(main())
    assert large.result is Carried.ANSWER_TOO_LARGE
    assert large.detail == f"answer over {MAX_ANSWER_BYTES} bytes"
    assert large.body == b""
    assert refused.result is Carried.UNREACHABLE
    assert refused.detail.startswith("Client")


def test_a_tls_pin_mismatch_says_both_fingerprints_as_bridge_prints_them() -> None:
    """The operator compares what the mismatch names with what `bridge tls show` and `peer add`
    print (``AB:CD:…``), not with raw hex."""
    import aiohttp

    from bridge.home.tls import format_tls_fingerprint
    from bridge.transports.http.courier import pin_mismatch_detail

    got, expected = bytes(range(32)), bytes(range(1, 33))
    exc = aiohttp.ServerFingerprintMismatch(expected, got, "127.0.0.1", 7443)
    detail = pin_mismatch_detail(exc)
    assert f"has SHA-256 {format_tls_fingerprint(got.hex())}, pinned " \
           f"{format_tls_fingerprint(expected.hex())}" in detail
    assert got.hex() not in detail


def test_a_peer_over_its_rate_limit_is_busy_not_an_answer_that_failed() -> None:
    # A 429 decides nothing and carries no signed answer: it is not handed on as an answer to
    # check (each would have been a failed answer and a warning in the log, thousands a
    # minute on a busy link), but as a try the peer turned away, once its Retry-After would
    # hold the envelope longer than the courier may (half the request timeout).
    seen: list[bytes] = []

    async def busy(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=429, body=b'{"error": "rate_limited"}',
                            headers={"Retry-After": "1"})

    async def main() -> tuple[Arrival, bool]:
        runner, url = await _serve(busy)
        courier = HttpCourier(url=url, request_timeout=1, metrics=metrics)
        try:
            await courier.send([_env(4)])
            arrival = await courier.receive()
            return arrival, asyncio.get_running_loop().time() < courier.pacing.until
        finally:
            await courier.close()
            await runner.cleanup()

    metrics = Metrics()
    arrival, paused = asyncio.run(main())
    assert (arrival.seq, arrival.result, arrival.body) == (4, Carried.BUSY, b"")
    assert "429" in arrival.detail
    assert seen == [b"envelope 4"] and metrics.count("delivery_busy") == 1
    assert paused  # the next send to the peer waits for the rest of the Retry-After


def test_a_429_pauses_every_send_then_they_go_one_at_a_time_lowest_first() -> None:
    # The peer has two requests saved up: the third and fourth of a window are refused, and
    # after the one pause go one at a time in sequence order (never the fourth first), each
    # answered; no envelope is handed back as a failed try.
    seen: list[tuple[float, bytes, int]] = []
    in_progress = [0, 0]  # now, most at once after the first 429

    async def two_then_busy_once(request: web.Request) -> web.Response:
        body = await request.read()
        in_progress[0] += 1
        try:
            refused = len(seen) in (2, 3)
            if len(seen) > 3:
                in_progress[1] = max(in_progress[1], in_progress[0])
            seen.append((asyncio.get_running_loop().time(), body, 429 if refused else 200))
            if refused:
                return web.Response(status=429, headers={"Retry-After": "1"})
            await asyncio.sleep(0.05)  # answered a moment later: the next would overlap
            return web.Response(body=b"signed " + body)
        finally:
            in_progress[0] -= 1

    async def main() -> list[Arrival]:
        runner, url = await _serve(two_then_busy_once)
        courier = HttpCourier(url=url, request_timeout=30, metrics=metrics)
        try:
            await courier.send([_env(1), _env(2), _env(3), _env(4)])
            return [await courier.receive() for _ in range(4)]
        finally:
            await courier.close()
            await runner.cleanup()

    metrics = Metrics()
    arrivals = asyncio.run(main())
    assert sorted((a.seq, a.result) for a in arrivals) == [
        (n, Carried.ANSWERED) for n in (1, 2, 3, 4)]
    refused = [t for t, _body, status in seen if status == 429]
    again = [(t, body) for t, body, status in seen[4:]]
    assert [body for _t, body in again] == [b"envelope 3", b"envelope 4"]
    assert again[0][0] - max(refused) >= 0.9  # not before the Retry-After
    assert in_progress[1] == 1  # one at a time after the 429
    assert metrics.count("delivery_busy") == 2
