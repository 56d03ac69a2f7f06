"""Bytes that are no envelope (PROTOCOL.md §2.4, §5.1): truncated, oversized, malformed and
non-canonical MessagePack, deep nesting, huge declared lengths, ext types and floats. Each is
refused with a signed rejection naming the decoding rule (or, over the size limit, an unsigned
413), echoes nothing, and changes nothing but the record of the refusal."""

from __future__ import annotations

import struct

import msgpack
import pytest

from bridge.core import codec

from .conftest import MAX_BODY
from .hostile import (
    Check,
    World,
    manifest,
    metric,
    one_chunk,
    parts,
    raw_exchange,
    reassemble,
    status_of,
    store_holds,
    unique,
)


def refused_as(world: World, data: bytes, reason: str) -> None:
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, reason, 0)])):
        world.expect(data, status=400, result="rejected", reason=reason)


def genuine(world: World) -> bytes:
    return world.forger.seal(one_chunk(manifest(world.alpha_key, unique("M-BODY"))),
                             seq=world.forger.seq + 60).data


@pytest.mark.parametrize("keep", ["1 byte", "half", "all but 1 byte"])
def test_truncated_envelope(world: World, keep: str) -> None:
    data = genuine(world)
    cut = {"1 byte": 1, "half": len(data) // 2, "all but 1 byte": len(data) - 1}[keep]
    refused_as(world, data[:cut], "truncated")


def test_empty_body(world: World) -> None:
    refused_as(world, b"", "truncated")


def test_trailing_bytes_after_the_envelope(world: World) -> None:
    refused_as(world, genuine(world) + b"\xc0", "trailing")


def test_malformed_msgpack(world: World) -> None:
    refused_as(world, b"\xc1" + b"not msgpack at all" * 3, "malformed")


@pytest.mark.parametrize("how", ["keys out of order", "int not in its shortest form",
                                 "bin length not in its shortest form"])
def test_non_canonical_msgpack(world: World, how: str) -> None:
    p = parts(genuine(world))
    if how == "keys out of order":
        # {"s", "h", "c"}: the same map, keys in the wrong order.
        data = b"\x83" + b"".join(msgpack.packb(k) + msgpack.packb(p[k], use_bin_type=True)
                                  for k in ("s", "h", "c"))
    elif how == "int not in its shortest form":
        data = codec.encode({"c": p["c"], "h": p["h"], "s": p["s"]})
        h = p["h"]
        at = h.find(b"\xa1v\x01")  # "v": 1 as cc 01 (uint8), not the fixint 01
        assert at >= 0
        h2 = h[:at] + b"\xa1v\xcc\x01" + h[at + 3:]
        data = b"\x83\xa1c" + msgpack.packb(p["c"], use_bin_type=True) + b"\xa1h" + \
            msgpack.packb(h2, use_bin_type=True) + b"\xa1s" + msgpack.packb(p["s"],
                                                                           use_bin_type=True)
    else:
        s = p["s"]  # 64 bytes: bin8 (c4 40), written as bin16 (c5 00 40)
        data = codec.encode({"c": p["c"], "h": p["h"]})
        data = b"\x83" + data[1:] + b"\xa1s\xc5" + struct.pack(">H", len(s)) + s
    refused_as(world, data, "not_canonical")


def test_deeply_nested_data(world: World) -> None:
    refused_as(world, b"\x91" * 5000 + b"\xc0", "too_deep")


def test_deeply_nested_maps_inside_the_header(world: World) -> None:
    p = parts(genuine(world))
    nested: object = 1
    for _ in range(40):
        nested = {"x": nested}
    h = codec.encode(codec.decode(p["h"]) | {"kind": nested})
    refused_as(world, reassemble(genuine(world), h=h), "too_deep")


@pytest.mark.parametrize("what", ["bin32", "str32", "array32", "map32"])
def test_huge_declared_length(world: World, what: str) -> None:
    """A length field of 2**32 - 1 with a few bytes behind it: refused without allocating."""
    tag = {"bin32": b"\xc6", "str32": b"\xdb", "array32": b"\xdd", "map32": b"\xdf"}[what]
    data = b"\x83\xa1c" + tag + b"\xff\xff\xff\xff" + b"\x00" * 16
    # Every length is checked against its limit where it is read (PROTOCOL.md §2.4: the
    # first byte that cannot belong decides), before the bytes there are.
    refused_as(world, data, "too_large")


def test_oversized_string_in_the_header(world: World) -> None:
    p = parts(genuine(world))
    h = codec.encode(codec.decode(p["h"]) | {"kind": "k" * 70_000})
    refused_as(world, reassemble(genuine(world), h=h), "too_large")


@pytest.mark.parametrize("ext", ["fixext", "timestamp", "ext8 in the header"])
def test_ext_types(world: World, ext: str) -> None:
    if ext == "fixext":
        data = b"\x83\xa1c\xd4\x05\x00\xa1h\xc4\x00\xa1s\xc4\x00"
    elif ext == "timestamp":
        data = msgpack.packb({"c": msgpack.Timestamp(1, 0), "h": b"", "s": b""},
                             datetime=False)
    else:
        p = parts(genuine(world))
        h = p["h"][:-1] + b"\xc7\x01\x07\x00"  # last value (kind's) replaced by an ext8
        data = reassemble(genuine(world), h=h)
    refused_as(world, data, "ext")


@pytest.mark.parametrize("where", ["outer map", "header"])
def test_floats(world: World, where: str) -> None:
    if where == "outer map":
        data = msgpack.packb({"c": 1.5, "h": b"", "s": b""}, use_bin_type=True)
        refused_as(world, data, "float")
    else:
        p = parts(genuine(world))
        h = codec.decode(p["h"])
        raw = msgpack.packb(h | {"at": 1.5e12}, use_bin_type=True)
        refused_as(world, reassemble(genuine(world), h=raw), "float")


def test_header_is_not_a_map(world: World) -> None:
    refused_as(world, reassemble(genuine(world), h=codec.encode([1, 2, 3])), "bad_header")


def test_envelope_fields_of_the_wrong_type(world: World) -> None:
    p = parts(genuine(world))
    refused_as(world, codec.encode({"c": p["c"], "h": p["h"], "s": "a signature"}),
               "not_envelope")


def test_oversized_body_is_refused_unsigned_before_decoding(world: World) -> None:
    count = metric(world.beta, "peer_too_large_total")
    with store_holds(world.beta, world.view, Check(limit_refusal="too_large")):
        reply = world.post(genuine(world) + b"\x00" * MAX_BODY)
        assert reply.status == 413
        assert reply.headers.get("content-type") != "application/vnd.bridge.transport-answer"
    assert metric(world.beta, "peer_too_large_total") == count + 1


def test_declared_content_length_over_the_limit_is_refused_before_reading(
        world: World) -> None:
    """Content-Length of 10 GB, and a few bytes: 413 at once, nothing waited for."""
    head = (b"POST /v1/envelopes HTTP/1.1\r\nHost: beta\r\n"
            b"Content-Type: application/vnd.bridge.envelope\r\n"
            b"Content-Length: 10000000000\r\n\r\n")
    with store_holds(world.beta, world.view, Check(limit_refusal="too_large")):
        raw = raw_exchange(world.port, head + b"\x83" * 100, timeout=10)
        assert status_of(raw) == 413, raw[:200]


def test_chunked_body_growing_over_the_limit(world: World) -> None:
    """No Content-Length: the body is counted as it arrives and cut at the limit."""
    piece = b"\x00" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(6)) + b"0\r\n\r\n"
    head = (b"POST /v1/envelopes HTTP/1.1\r\nHost: beta\r\n"
            b"Content-Type: application/vnd.bridge.envelope\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with store_holds(world.beta, world.view, Check(limit_refusal="too_large")):
        raw = raw_exchange(world.port, head + chunked, timeout=10)
        assert status_of(raw) == 413, raw[:200]


def test_body_at_the_limit_is_still_read(world: World) -> None:
    """The limit is not off by one: a body of exactly max_body_bytes is decoded (and, being
    zeros, refused as no envelope) rather than refused for its size."""
    refused_as(world, b"\x00" * MAX_BODY, "trailing")


def test_content_length_and_chunked_together_are_refused(world: World) -> None:
    """A request smuggling shape: both framings at once. aiohttp's parser refuses it."""
    head = (b"POST /v1/envelopes HTTP/1.1\r\nHost: beta\r\n"
            b"Content-Type: application/vnd.bridge.envelope\r\n"
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with store_holds(world.beta, world.view):
        raw = raw_exchange(world.port, head, timeout=10)
        assert status_of(raw) == 400, raw[:200]


def test_unused_request_method_bytes_and_binary_noise_on_the_socket(world: World) -> None:
    with store_holds(world.beta, world.view):
        raw = raw_exchange(world.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20,
                           timeout=10)
        assert status_of(raw) in (400, None), raw[:200]

