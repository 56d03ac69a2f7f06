"""The HTTP courier over real HTTP on 127.0.0.1: each POST becomes an ``Arrival`` naming the
envelope it answers, with the answer's bytes and the status only as a note; no answer, or one
too large to be a transport answer, says why instead."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

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
    # minute on a busy link), but as a try the peer turned away.
    async def busy(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=429, body=b'{"error": "rate_limited"}',
                            headers={"Retry-After": "1"})

    async def main() -> Arrival:
        runner, url = await _serve(busy)
        courier = HttpCourier(url=url, request_timeout=10)
        try:
            await courier.send([_env(4)])
            return await courier.receive()
        finally:
            await courier.close()
            await runner.cleanup()

    arrival = asyncio.run(main())
    assert (arrival.seq, arrival.result, arrival.body) == (4, Carried.BUSY, b"")
    assert "429" in arrival.detail
