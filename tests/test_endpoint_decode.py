"""The peer endpoint decodes an envelope's header beside the database thread: a small body
on the event loop itself (no executor hop on a round trip's path), a large one on an executor
thread, so that copying it never holds the loop. Either way a hostile body is a refusal with
a reason code, the same one, never an exception out of the endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bridge.core import codec
from bridge.core.errors import PeerError
from bridge.engine.inbound import decode_envelope
from bridge.transports.http import endpoint

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors" / "envelopes"


def run_counting_executor_hops(body: bytes) -> tuple[Any, int]:
    """``_decoded(body)`` on a fresh loop, with how many calls went to an executor."""
    loop = asyncio.new_event_loop()
    hops = 0
    original = loop.run_in_executor

    def counted(*args: Any) -> Any:
        nonlocal hops
        hops += 1
        return original(*args)

    loop.run_in_executor = counted  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(endpoint._decoded(body)), hops
    finally:
        loop.close()


def test_a_small_envelope_is_decoded_on_the_loop_with_no_executor_hop() -> None:
    body = (VECTORS / "001-manifest.env").read_bytes()
    assert len(body) <= endpoint.INLINE_DECODE_BYTES
    parsed, hops = run_counting_executor_hops(body)
    assert hops == 0
    assert not isinstance(parsed, PeerError)
    assert parsed[0] == decode_envelope(body)[0]  # type: ignore[index]


def test_a_large_envelope_is_decoded_on_an_executor_thread_not_the_loop() -> None:
    small = codec.decode((VECTORS / "001-manifest.env").read_bytes())
    padded = codec.encode({**small, "c": small["c"] + bytes(endpoint.INLINE_DECODE_BYTES)})
    parsed, hops = run_counting_executor_hops(padded)
    assert hops == 1
    assert not isinstance(parsed, PeerError)  # the same header, a longer ciphertext
    assert parsed[2] == small["c"] + bytes(endpoint.INLINE_DECODE_BYTES)  # type: ignore[index]


@pytest.mark.parametrize("size", [100, 2 * endpoint.INLINE_DECODE_BYTES])
def test_a_hostile_body_of_any_size_is_refused_with_the_same_reason_either_way(size: int
                                                                            ) -> None:
    body = codec.encode({"c": bytes(size), "h": b"\xc1 not a header", "s": bytes(64)})
    parsed, _ = run_counting_executor_hops(body)
    direct = decode_envelope(body)
    assert isinstance(parsed, PeerError) and isinstance(direct, PeerError)
    assert parsed.reason == direct.reason
