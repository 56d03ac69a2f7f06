"""The suite-2 vectors (schemas/vectors/suite-2, PROTOCOL.md §9.2): ``bridge verify`` agrees
with every one, each hybrid forgery is refused for its reason, ``--check`` notices a changed
file, and the keys say they are test keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_vectors import _generator

from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity
from bridge.home.key_files import load_public

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
ROOT = VECTORS / "suite-2"
BRIDGE = Path(sys.executable).parent / "bridge"
KEYS = [str(ROOT / "keys" / "alpha-test.pub"), str(ROOT / "keys" / "beta-test.pub")]


def expected(folder: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((ROOT / folder / "expected.json").read_text())[
        "vectors"]
    return records


def bridge_verify(folder: str) -> dict[str, dict[str, Any]]:
    """One ``bridge verify --json`` over every vector of ``folder``; results by file."""
    records = expected(folder)
    args = [str(ROOT / folder / r["file"]) for r in records]
    flags = [x for k in KEYS for x in ("--keys", k)]
    run = subprocess.run([str(BRIDGE), "verify", "--json", *flags, *args], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode in (0, 1), run.stderr
    results = json.loads(run.stdout)
    return {str(Path(r["file"]).relative_to(ROOT / folder)): r for r in results}


@pytest.mark.parametrize("folder", ["receipts", "transcripts"])
def test_bridge_verify_agrees_with_every_suite_2_vector(folder: str) -> None:
    got = bridge_verify(folder)
    records = expected(folder)
    assert set(got) == {r["file"] for r in records}
    for r in records:
        assert (got[r["file"]]["ok"], got[r["file"]]["reason"]) == (r["ok"], r.get("reason")), \
            r["file"]


def test_every_hybrid_forgery_is_listed_and_refused() -> None:
    """The forgeries the issue names exist for documents, acknowledgements, envelopes,
    transport receipts and identity files."""
    receipts = {r["file"]: r for r in expected("receipts")}
    for name in ("manifest-ed25519-only", "manifest-ml-dsa-only", "manifest-halves-swapped",
                 "manifest-suite-1-signature", "ack-ed25519-only", "ack-ml-dsa-only"):
        record = receipts[f"invalid/hybrid-{name}.receipt"]
        assert (record["ok"], record["reason"]) == (False, "bad_signature")
    transcripts = {r["file"] for r in expected("transcripts")}
    assert {"invalid-hybrid/hybrid-transport-receipt-ed25519-only.transcript",
            "invalid-hybrid/hybrid-envelope-ml-dsa-only.transcript"} <= transcripts
    envelopes = json.loads((ROOT / "envelopes" / "invalid" / "expected.json").read_text())
    assert {c["file"]: c["reason"] for c in envelopes["cases"]}["ed25519-only.env"] == (
        "suite_downgrade")
    identities = json.loads((ROOT / "keys" / "invalid" / "expected.json").read_text())
    assert len(identities["cases"]) >= 4


def test_suite_2_test_keys_say_they_are_test_keys() -> None:
    assert "never use them for anything real" in (ROOT / "keys" / "README.md").read_text()
    for party in ("alpha-test", "beta-test", "mallory-test"):
        public = load_public(ROOT / "keys" / f"{party}.pub")
        assert public.party == party and public.suite == suites.SUITE_2.id
        private = PrivateIdentity.loads((ROOT / "keys" / f"{party}.key").read_bytes())
        assert private.public.key_id == public.key_id


def test_the_upgrade_history_moves_a_suite_1_key_to_suite_2() -> None:
    old = load_public(VECTORS / "keys" / "beta-test.pub")
    new = load_public(ROOT / "key-history" / "beta-test-next.pub")
    assert (old.suite, new.suite) == (suites.SUITE_1.id, suites.SUITE_2.id)


@pytest.mark.parametrize("target", ["receipts/valid/item-rem-0001-received.receipt",
                                    "keys/alpha-test.pub", "envelopes/001-manifest.env"])
def test_check_notices_a_changed_suite_2_vector(target: str, tmp_path: Path) -> None:
    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS, copy)
    path = copy / "suite-2" / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    assert _generator().main(["--check", "--out", str(copy)]) == 1


def test_check_notices_a_missing_suite_2_vector(tmp_path: Path) -> None:
    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS, copy)
    (copy / "suite-2" / "envelopes" / "invalid" / "ml-dsa-only.env").unlink()
    assert _generator().main(["--check", "--out", str(copy)]) == 1
