"""Decoding bombs on the peer endpoint: bodies of a few bytes per value (empty arrays, maps of
maps, tiny integers, deep nesting, lengths that declare far more than there is) cost a C
decoder tens of bytes of memory per byte. Each is one unauthenticated request within
``max_body_bytes``; each must be refused with a signed reason, within 2 s, with the daemon's
peak RSS growing by at most 3 × the body, while the local socket's /v1/health keeps
answering at once (decoding never runs on the database thread). Figures are printed (``-s``).
"""

from __future__ import annotations

import statistics
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.daemon.pair import Node

from .conftest import SHARED_LIMITS, build_world, stop
from .hostile import World, request, serving

BOMB_BODY = 16 * 1024 * 1024
MIB = 1024 * 1024


def _array(n: int) -> bytes:
    """An array header in its shortest form."""
    if n <= 15:
        return bytes([0x90 + n])
    return b"\xdd" + struct.pack(">I", n) if n > 0xFFFF else b"\xdc" + struct.pack(">H", n)


def _fill(unit: bytes, header: bytes = b"") -> bytes:
    """Arrays of a million ``unit`` values, as many as fit in the body."""
    per = 1_000_000
    block = _array(per) + unit * per
    count = (BOMB_BODY - 16) // len(block)
    return header + _array(count) + block * count


def _bombs() -> dict[str, bytes]:
    genuine_header = b"\xa1h\xc4\x00\xa1s\xc4\x00"
    return {
        "nested empty arrays (0x90)": _fill(b"\x90"),
        "arrays of 65535 empty arrays (0xdc)": _array(200) + (
            b"\xdc\xff\xff" + b"\x90" * 0xFFFF) * 200,
        "maps of maps": b"\xdf" + struct.pack(">I", 1_000_000) + b"\xa0\x80" * 1_000_000,
        "long runs of tiny integers": _fill(b"\x00"),
        "short strings": _fill(b"\xa2ab"),
        "deep nesting": b"\x91" * (BOMB_BODY - 1) + b"\xc0",
        "huge declared lengths": (b"\xdd\xff\xff\xff\xff" * 100) + b"\x00" * (BOMB_BODY - 500),
        "a width bomb as the envelope's first value": b"\x83\xa1c" + _fill(b"\x90")[:-64]
        + genuine_header,
        "a width bomb inside the header": b"\x83\xa1c\xc4\x00\xa1h\xc5\xff\xf0" + _array(
            0xFFE0 - 3) + b"\x90" * (0xFFE0 - 3) + b"\x00" * 10 + b"\xa1s\xc4\x00",
        "a huge ciphertext that is no envelope": b"\x83\xa1c\xc6" + struct.pack(
            ">I", BOMB_BODY - 40) + b"\x90" * (BOMB_BODY - 40) + genuine_header,
    }


@pytest.fixture(scope="module")
def bomb_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(Path(tmp_path_factory.mktemp("bombs")), SHARED_LIMITS,
                        max_body=BOMB_BODY)
    yield world
    stop(world.beta)


def _status(node: Node) -> dict[str, int]:
    assert node.proc is not None
    out = {}
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def _reset_peak(node: Node) -> None:
    """Linux resets VmHWM to the current RSS on "5" (proc(5), clear_refs)."""
    assert node.proc is not None
    Path(f"/proc/{node.proc.pid}/clear_refs").write_text("5")


@pytest.mark.parametrize("shape", list(_bombs()))
def test_width_bomb_body_costs_bounded_memory_and_leaves_local_health_answering(
        bomb_world: World, shape: str) -> None:
    body = _bombs()[shape]
    assert len(body) <= BOMB_BODY
    node = bomb_world.beta
    client = node.client
    client.health()
    _reset_peak(node)
    before = _status(node)["VmRSS"]
    latencies: list[float] = []
    answers: list[str] = []
    done = threading.Event()

    def poll_health() -> None:
        while not done.is_set():
            t = time.monotonic()
            answers.append(client.health()["status"])
            latencies.append(time.monotonic() - t)
            time.sleep(0.01)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        t0 = time.monotonic()
        reply = request(bomb_world.port, body)
        elapsed = time.monotonic() - t0
    finally:
        done.set()
        poller.join()
    grown = _status(node)["VmHWM"] - before
    print(f"\n{shape}: {len(body) / MIB:.1f} MiB body, answered {reply.status} in "
          f"{elapsed:.2f} s, peak RSS +{grown / MIB:.1f} MiB "
          f"({grown / len(body):.2f} x the body), local /v1/health worst "
          f"{max(latencies) * 1000:.0f} ms, median "
          f"{statistics.median(latencies) * 1000:.0f} ms over {len(latencies)} calls")
    assert reply.status == 400
    answer = bomb_world.answer(reply)
    assert answer.result == "rejected"
    assert answer.reason in {"too_large", "too_deep", "truncated", "not_envelope",
                             "not_canonical"}, answer.reason
    assert grown <= 3 * len(body)
    # The local API answered throughout, every time "ok" (the times are printed above, for
    # the record: speed is measured in bench/, never asserted on this shared machine).
    assert answers and set(answers) == {"ok"}, answers
    serving(node)
