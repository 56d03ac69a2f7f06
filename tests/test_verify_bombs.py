"""``bridge verify`` on hostile files: receipts and transcripts shaped as decoding bombs
(a million empty arrays per megabyte, maps of maps, tiny integers, deep nesting, declared
lengths far past the end), garbage, and files that are no file at all. Each runs as its own
process, so that its peak RSS can be read: at most 5 x the file's size + 100 MB. Figures,
the seconds among them, are printed (``-s``); speed is measured in bench/, never asserted.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.core import codec
from bridge.core.receipts import DOCUMENT_RECEIPT, RECEIPT_LIMITS
from bridge.core.transcript import TRANSCRIPT, TRANSCRIPT_LIMITS

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
KEYS = [VECTORS / "keys" / "alpha-test.pub", VECTORS / "keys" / "beta-test.pub"]
MIB = 1024 * 1024
SIZE = 16 * MIB
# Runs ``bridge verify`` as its only child and prints that child's peak RSS (bytes).
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(code, peak, time.monotonic() - t)\n"
)


def _array(n: int) -> bytes:
    """An array header in its shortest form."""
    if n <= 15:
        return bytes([0x90 + n])
    return b"\xdd" + struct.pack(">I", n) if n > 0xFFFF else b"\xdc" + struct.pack(">H", n)


def _million(unit: bytes, size: int) -> bytes:
    """Arrays of a million ``unit`` values, as many as fit in ``size`` bytes."""
    block = _array(1_000_000) + unit * 1_000_000
    count = max(1, (size - 16) // len(block))
    return _array(count) + block * count


def _head(kind: str) -> bytes:
    """The start of a map {"type", "v", "z"} that looks like a receipt or a transcript (so the
    verifier takes it for one); the value of "z" follows."""
    fields = codec.encode({"type": TRANSCRIPT if kind == "transcript" else DOCUMENT_RECEIPT,
                           "v": 1})
    return b"\x83" + fields[1:] + b"\xa1z"


def _bombs(size: int) -> dict[str, bytes]:
    out = {}
    for kind in ("receipt", "transcript"):
        head = _head(kind)
        out[f"{kind}: nested empty arrays"] = head + _million(b"\x90", size - len(head))
        out[f"{kind}: maps of maps"] = head + b"\xdf" + struct.pack(">I", 900_000) + (
            b"\xa1k\x81\xa0\x80") * 900_000
        out[f"{kind}: tiny integers"] = head + _million(b"\x05", size - len(head))
        out[f"{kind}: short strings"] = head + _million(b"\xa2ab", size - len(head))
    out["a width bomb as the first key"] = b"\x81" + _million(b"\x90", size - 2) + b"\xc0"
    out["deep nesting"] = b"\x91" * (size - 1) + b"\xc0"
    out["huge declared lengths"] = b"\xdd\xff\xff\xff\xff" * 1000 + b"\x00" * (size - 5000)
    out["garbage"] = os.urandom(size)
    return out


def _verify(path: Path) -> tuple[int, int, float]:
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "bridge", "verify", str(path)]
    for key in KEYS:
        cmd += ["--keys", str(key)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    code, peak, seconds = out.stdout.split()
    return int(code), int(peak), float(seconds)


def test_verify_limits_are_sane() -> None:
    """Files of a few hundred megabytes at most; decoded objects at most twice the file."""
    for limits in (RECEIPT_LIMITS, TRANSCRIPT_LIMITS):
        assert limits.max_bytes <= 256 * MIB
        assert limits.max_expansion <= 2


@pytest.mark.parametrize("shape", list(_bombs(1024)))
def test_verify_survives_a_bomb_file_in_bounded_memory(
        tmp_path: Path, shape: str) -> None:
    for size in (SIZE // 4, SIZE):
        path = tmp_path / f"bomb-{size}.bin"
        path.write_bytes(_bombs(size)[shape])
        code, peak, seconds = _verify(path)
        size = path.stat().st_size
        print(f"\n{shape}: {size / MIB:.1f} MiB file, exit {code}, peak RSS "
              f"{peak / MIB:.0f} MiB (bound {(5 * size + 100 * 1000 * 1000) / MIB:.0f}), "
              f"{seconds:.2f} s")
        assert code == 1  # FAIL (the reason is checked below)
        assert peak <= 5 * size + 100 * 1000 * 1000
    # The seconds are printed, not asserted: speed is measured in bench/, never in a test on
    # a shared machine (the memory bound above is what the test holds the verifier to).


def test_verify_names_the_reason_of_a_bomb_file(tmp_path: Path) -> None:
    path = tmp_path / "bomb.receipt"
    path.write_bytes(_bombs(4 * MIB)["receipt: nested empty arrays"])
    cmd = [sys.executable, "-m", "bridge", "verify", "--json", str(path)]
    for key in KEYS:
        cmd += ["--keys", str(key)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (record,) = json.loads(out.stdout)
    assert record["ok"] is False
    assert record["reason"] == "too_large"


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "directory"])
def test_verify_refuses_what_is_not_a_regular_file(tmp_path: Path, target: str) -> None:
    """/dev/zero has size 0 and never ends: reading it whole would fill the memory."""
    if target == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif target == "directory":
        path = tmp_path
    else:
        path = Path(target)
    cmd = [sys.executable, "-m", "bridge", "verify", str(path)]
    for key in KEYS:
        cmd += ["--keys", str(key)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "[unreadable]" in out.stdout


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_verify_refuses_a_keys_file_that_is_not_a_regular_file(tmp_path: Path,
                                                                target: str) -> None:
    path = Path(target)
    if target == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    receipt = VECTORS / "receipts" / "valid" / "item-rem-0001-received.receipt"
    cmd = [sys.executable, "-m", "bridge", "verify", str(receipt), "--keys", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "not a regular file" in out.stderr
