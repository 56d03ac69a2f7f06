"""``bridge verify``: OK/FAIL lines, exit codes 0/1/2, --json, and never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bridge.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "schemas" / "vectors"
RECEIPTS = VECTORS / "receipts"
ALPHA = VECTORS / "keys" / "alpha-test.pub"
BETA = VECTORS / "keys" / "beta-test.pub"
KEYS = ["--keys", str(ALPHA), "--keys", str(BETA)]
VALID = sorted((RECEIPTS / "valid").glob("*.receipt"))
INVALID = sorted((RECEIPTS / "invalid").glob("*.receipt"))
EXPECTED = {v["file"]: v for v in json.loads((RECEIPTS / "expected.json").read_text())["vectors"]}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


def test_valid_receipts_print_ok_and_exit_0() -> None:
    result = run(*map(str, VALID), *KEYS)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(VALID)
    for path, line in zip(VALID, lines, strict=True):
        assert line.startswith(f"OK: {path}: ")


def test_ok_line_says_who_declared_and_acknowledged_what_when() -> None:
    path = RECEIPTS / "valid" / "item-pow-0003-disputed.receipt"
    line = run(str(path), *KEYS).output.strip()
    for words in ("POW-TEST-0003", "alpha-test", "manifest MAN-TEST-0003", "batch 3",
                  "beta-test", "DISPUTED", "date of birth does not match",
                  "2026-03-05T10:00:00.000Z"):
        assert words in line


def test_document_receipt_gives_one_summary_line() -> None:
    result = run(str(RECEIPTS / "valid" / "document-man-test-0003.receipt"), *KEYS)
    assert result.exit_code == 0
    (line,) = result.output.splitlines()
    assert "8 items" in line and "1 unacknowledged" in line and "2 RECEIVED" in line


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_receipt_prints_fail_with_reason_and_exits_1(path: Path) -> None:
    result = run(str(path), *KEYS)
    assert result.exit_code == 1
    reason = EXPECTED[f"invalid/{path.name}"]["reason"]
    assert result.output.startswith(f"FAIL: {path}: ")
    assert result.output.rstrip().endswith(f"[{reason}]")
    assert len(result.output.splitlines()) == 1


def test_one_failure_among_many_exits_1_and_reports_each() -> None:
    files = [VALID[0], INVALID[0], VALID[1]]
    result = run(*map(str, files), *KEYS)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in result.output.splitlines()] == ["OK", "FAIL", "OK"]


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff" * 100, b"\x91" * 10_000,
                                     json.dumps({"not": "a receipt"}).encode()],
                         ids=["empty", "text", "ff", "deep", "json"])
def test_malformed_file_is_a_fail_line_not_a_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.receipt"
    path.write_bytes(content)
    result = run(str(path), *KEYS)
    assert result.exit_code == 1
    assert result.output.startswith(f"FAIL: {path}: ")


def test_missing_or_unreadable_receipt_is_a_fail_line(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.receipt"), str(tmp_path), *KEYS)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 2 and all(line.startswith("FAIL: ") for line in lines)
    assert "[unreadable]" in lines[0]


def test_no_files_is_a_usage_error() -> None:
    assert run(*KEYS).exit_code == 2


def test_no_keys_is_a_usage_error() -> None:
    assert run(str(VALID[0])).exit_code == 2


def test_missing_keys_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(VALID[0]), "--keys", str(tmp_path / "absent.pub"))
    assert result.exit_code == 2
    assert "absent.pub" in result.output


def test_invalid_keys_file_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pub"
    bogus.write_text('{"bridge_identity": 1, "statement": "AA==", "signature": "AA=="}')
    assert run(str(VALID[0]), "--keys", str(bogus)).exit_code == 2
    assert run(str(VALID[0]), "--keys", str(VALID[1])).exit_code == 2  # not JSON at all


def test_json_output_parses() -> None:
    files = [RECEIPTS / "valid" / "item-rem-0001-received.receipt", INVALID[0],
             RECEIPTS / "valid" / "document-man-test-0003.receipt"]
    result = run(*map(str, files), *KEYS, "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert [r["file"] for r in out] == list(map(str, files))
    assert [r["ok"] for r in out] == [True, False, True]
    assert out[0]["kind"] == "item" and out[0]["status"] and out[0]["history"]
    assert out[0]["declared_by"]["party"] == "alpha-test"
    assert out[1]["reason"] == EXPECTED[f"invalid/{INVALID[0].name}"]["reason"]
    assert out[2]["kind"] == "document" and out[2]["counts"]["RECEIVED"] == 2
    assert all(c["passed"] for c in out[0]["checks"])


def test_verify_needs_no_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BRIDGE_HOME", str(tmp_path / "does-not-exist"))
    assert run(str(VALID[0]), *KEYS).exit_code == 0
    assert not (tmp_path / "does-not-exist").exists()


def test_real_process() -> None:
    """Once as a real process: the console script if installed, else ``python -m bridge``."""
    script = Path(sys.executable).parent / "bridge"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([*command, "verify", str(VALID[0]), *KEYS], capture_output=True,
                        text=True, env=env, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"OK: {VALID[0]}: ")
    bad = subprocess.run([sys.executable, "-m", "bridge", "verify", str(INVALID[0]), *KEYS],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL: ")
    assert "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "bridge", "verify", str(VALID[0])],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
