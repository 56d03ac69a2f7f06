"""A hostile receiver: a small HTTP server on 127.0.0.1 that stands where a peer's endpoint
should be and answers a real sender daemon's deliveries with crafted transport answers, signed
with the peer's real key (the worst case: a compromised or buggy peer, or an on-path attacker
replaying what the peer once signed).

Everything here is synthetic: invented parties and records.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.core import answers as transport
from bridge.core import codec, envelope
from bridge.core.crypto.identity import TAG_TRANSPORT_RECEIPT, PrivateIdentity
from bridge.daemon.pair import LOOPBACK

ANSWER_TYPE = "application/vnd.bridge.transport-answer"


@dataclass(frozen=True)
class Post:
    at: float  # time.monotonic() when it arrived
    header: envelope.EnvelopeHeader
    digest: bytes
    data: bytes


# What the receiver answers to one POST: (HTTP status, body).
Answerer = Callable[[Post], tuple[int, bytes]]


def statement(key: PrivateIdentity, post: Post, **fields: Any) -> dict[str, Any]:
    """The statement an honest receiver would sign for ``post`` (accepted), with ``fields``
    replaced; not checked, so that it can say anything."""
    h = post.header
    base: dict[str, Any] = {
        "v": 1, "type": "bridge.transport-receipt", "from": h.sender, "to": h.recipient,
        "by_key": key.key_id, "envelope": post.digest, "id": h.message_id, "seq": h.seq,
        "at": int(time.time() * 1000), "result": "accepted", "reason": None,
        "expected_seq": None}
    return base | fields


def signed(key: PrivateIdentity, value: dict[str, Any]) -> bytes:
    """Sign any statement as the peer's transport answer."""
    body = codec.encode(value)
    return codec.encode({"r": body, "s": key.sign(TAG_TRANSPORT_RECEIPT, body)})


def accept(key: PrivateIdentity) -> Answerer:
    """An honest receiver's answer: a signed receipt for the very envelope."""
    return lambda post: (200, signed(key, statement(key, post)))


def gap(key: PrivateIdentity, expected: Callable[[Post], int]) -> Answerer:
    return lambda post: (409, signed(key, statement(
        key, post, type="bridge.rejection", result="rejected", reason="gap",
        expected_seq=expected(post))))


class HostileReceiver:
    """Serves ``POST /v1/envelopes`` on 127.0.0.1:``port`` (0: any free port; ``url`` is where
    it listens) from a thread of its own; every POST is recorded in ``posts`` and answered by
    ``answer`` (which a test may swap at any time)."""

    def __init__(self, port: int, answer: Answerer) -> None:
        self.port = port
        self.answer = answer
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="receiver")
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the hostile receiver did not start")

    async def _handle(self, request: web.Request) -> web.Response:
        data = await request.read()
        header, _, _, _ = envelope.parse(data)
        post = Post(at=time.monotonic(), header=header, digest=envelope.envelope_hash(data),
                    data=data)
        with self._lock:
            self.posts.append(post)
        status, body = self.answer(post)
        return web.Response(status=status, body=body, content_type=ANSWER_TYPE)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/envelopes", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, LOOPBACK, self.port).start())
        self.port = int(runner.addresses[0][1])  # the port it got, for port 0
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def count(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for p in self.posts if p.at >= since)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def captured(key: PrivateIdentity, post: Post) -> dict[str, Any]:
    """A genuine rejection as the peer once signed it for another envelope (a gap at seq 5,
    expecting 1), to be replayed."""
    return statement(key, post, type="bridge.rejection", result="rejected", reason="gap",
                     expected_seq=1, seq=5, envelope=bytes(range(32)))


__all__ = ["HostileReceiver", "Post", "accept", "captured", "gap", "signed", "statement",
           "transport"]
