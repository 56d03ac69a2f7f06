"""The committed test vectors (schemas/vectors): reproducible, and verified as expected.

Regenerating the deterministic vectors must change nothing (like python-tuf's generated test
metadata); envelopes are randomised by HPKE, so they are opened and compared with their sidecars.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bridge.core import answers as transport
from bridge.core import codec, envelope
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.errors import DecodeError, PeerError, VerificationError
from bridge.core.receipts import check_receipt, verify_receipt
from bridge.core.transcript import check_transcript
from bridge.engine.exchange import Exchange
from bridge.home.config import Config
from bridge.home.key_files import load_public
from bridge.store.sqlite.store import Store

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "schemas" / "vectors"
RECEIPTS = VECTORS / "receipts"
KEYS = VECTORS / "keys"
EXPECTED: dict[str, Any] = json.loads((RECEIPTS / "expected.json").read_text())
VALID = [v for v in EXPECTED["vectors"] if v["ok"]]
INVALID = [v for v in EXPECTED["vectors"] if not v["ok"]]


def _generator() -> ModuleType:
    """schemas/vectors/generate.py, imported once (it is a script, not a package module)."""
    name = "bridge_vectors_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _private(party: str) -> PrivateIdentity:
    # Not load_private: git does not keep mode 0600, and these keys are public test keys.
    return PrivateIdentity.loads((KEYS / f"{party}.key").read_bytes(), source=party)


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return Keyring.of(load_public(RECEIPTS / p) for p in EXPECTED["keys"])


def test_regenerating_the_vectors_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert _generator().main(["--check"]) == 0, capsys.readouterr().err


def test_check_notices_a_changed_vector(tmp_path: Path) -> None:
    """--check must really compare: a copy with one changed byte is reported."""
    import shutil

    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS, copy)
    target = copy / "receipts" / "valid" / "item-rem-0001-received.receipt"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    (copy / "receipts" / "invalid" / "stale.receipt").write_bytes(b"\xc0")
    assert _generator().main(["--check", "--out", str(copy)]) == 1


def test_there_are_enough_invalid_vectors_and_every_file_is_listed() -> None:
    assert len(INVALID) >= 12
    assert len(VALID) >= 4 and any(v["kind"] == "document" for v in VALID)
    listed = {v["file"] for v in EXPECTED["vectors"]}
    on_disk = {str(p.relative_to(RECEIPTS)) for p in RECEIPTS.rglob("*.receipt")}
    assert listed == on_disk
    assert all(v["tries"] for v in EXPECTED["vectors"])


@pytest.mark.parametrize("vector", VALID, ids=[v["file"] for v in VALID])
def test_valid_vector_verifies(vector: dict[str, Any], keys: Keyring) -> None:
    result = verify_receipt((RECEIPTS / vector["file"]).read_bytes(), keys)
    assert result.kind == vector["kind"]
    assert result.summary() == vector["summary"]
    if result.kind == "item":
        assert result.item_id == vector["item_id"] and result.status == vector["status"]
        assert [c.status for c in result.history] == vector["history"]
    else:
        assert dict(result.counts) == vector["counts"]
        assert result.unacknowledged == vector["unacknowledged"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["file"] for v in INVALID])
def test_invalid_vector_fails_for_the_expected_reason(vector: dict[str, Any],
                                                      keys: Keyring) -> None:
    result = check_receipt((RECEIPTS / vector["file"]).read_bytes(), keys)
    assert not result.ok
    assert result.reason == vector["reason"], result.diagnosis


def test_valid_vectors_fail_without_the_senders_key() -> None:
    only_beta = Keyring.of([load_public(KEYS / "beta-test.pub")])
    for vector in VALID:
        result = check_receipt((RECEIPTS / vector["file"]).read_bytes(), only_beta)
        assert (result.ok, result.reason) == (False, "unknown_key")


def test_test_keys_say_they_are_test_keys() -> None:
    assert "never use them for anything real" in (KEYS / "README.md").read_text()
    for party in ("alpha-test", "beta-test", "mallory-test"):
        public = load_public(KEYS / f"{party}.pub")
        assert public.party == party
        assert _private(party).public.key_id == public.key_id


# ---------------------------------------------------------------- envelopes

SIDECARS = sorted((VECTORS / "envelopes").glob("*.json"))


@pytest.mark.parametrize("sidecar", SIDECARS, ids=[p.stem for p in SIDECARS])
def test_envelope_vector_opens_and_matches_its_sidecar(sidecar: Path) -> None:
    spec = json.loads(sidecar.read_text())
    data = (sidecar.parent / spec["file"]).read_bytes()
    beta = _private("beta-test")
    senders = Keyring.of([load_public(KEYS / "alpha-test.pub")])
    opened = envelope.open_envelope(beta, senders, data)
    h = opened.header
    assert (h.sender, h.sender_key.hex(), h.recipient, h.recipient_key.hex()) == (
        spec["from"], spec["from_key"], spec["to"], spec["to_key"])
    assert (h.message_id.hex(), h.seq, h.sent_at, h.kind, list(h.suite)) == (
        spec["id"], spec["seq"], spec["at"], spec["kind"], spec["suite"])
    prev = spec["prev"]
    want_prev = (bytes.fromhex(prev) if isinstance(prev, str) else
                 hashlib.sha256((sidecar.parent / prev["sha256_of"]).read_bytes()).digest())
    assert h.prev == want_prev
    assert opened.payload == base64.b64decode(spec["payload_base64"])
    assert hashlib.sha256(opened.payload).hexdigest() == spec["payload_sha256"]


def test_envelope_vectors_exist() -> None:
    assert len(SIDECARS) >= 3


def test_envelope_vectors_get_the_answers_their_sidecars_expect(tmp_path: Path) -> None:
    """Through a real receiver (beta-test's exchange on a real SQLite file), in order: the
    kinds of PROTOCOL §8.1 are taken, any other kind is refused in the chain with
    ``unknown_kind``, and every answer is bound to its envelope (§8.3)."""
    alpha = load_public(KEYS / "alpha-test.pub")
    beta = _private("beta-test")
    store = Store(tmp_path / "beta.db")
    receiver = Exchange(store=store, identity=beta, peers={"alpha-test": alpha},
                        config=Config(party="beta-test", listen="127.0.0.1:7443"))
    for sidecar in SIDECARS:
        spec = json.loads(sidecar.read_text())
        data = (sidecar.parent / spec["file"]).read_bytes()
        answer = transport.parse_answer(receiver.receive_envelope(data).body, beta.public)
        transport.check_receipt_matches(answer, digest=hashlib.sha256(data).digest(),
                                        seq=spec["seq"], message_id=bytes.fromhex(spec["id"]))
        assert {"result": answer.result, "reason": answer.reason} == spec["expect"], spec["file"]
    store.close()


def test_envelope_vector_does_not_open_for_another_party() -> None:
    data = (VECTORS / "envelopes" / "001-manifest.env").read_bytes()
    with pytest.raises(PeerError) as info:
        envelope.open_envelope(_private("mallory-test"),
                               Keyring.of([load_public(KEYS / "alpha-test.pub")]), data)
    assert info.value.reason == "wrong_recipient"


def test_protocol_lists_every_invalid_vector_with_its_reason() -> None:
    """PROTOCOL.md §9 is the published list of attacks; it must not drift from the files."""
    text = (ROOT / "schemas" / "PROTOCOL.md").read_text()
    for vector in INVALID:
        name = Path(vector["file"]).stem
        assert f"| `{name}` |" in text, name
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.rstrip().endswith(f"| `{vector['reason']}` |"), row


DECODING: list[dict[str, Any]] = json.loads(
    (VECTORS / "decoding" / "expected.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", DECODING, ids=lambda v: v["name"])
def test_decoding_vector_is_decided_for_its_reason(vector: dict[str, Any]) -> None:
    """One input per rule of PROTOCOL.md §2.4, in the order the rules are checked."""
    limits = {"DEFAULT": codec.DEFAULT_LIMITS, "SMALL": codec.SMALL_LIMITS}[vector["limits"]]
    data = b"".join(bytes.fromhex(p["hex"]) * p["repeat"] for p in vector["input"])
    if vector["ok"]:
        assert codec.encode(codec.decode(data, limits)) == data
    else:
        with pytest.raises(DecodeError) as exc:
            codec.decode(data, limits)
        assert exc.value.reason == vector["reason"]


def test_decoding_vectors_cover_every_reason_of_the_table() -> None:
    reasons = {v["reason"] for v in DECODING if not v["ok"]}
    assert reasons == {"too_large", "truncated", "trailing", "float", "ext", "map_key", "utf8",
                       "too_deep", "not_canonical", "malformed"}


KEY_HISTORY = VECTORS / "key-history"
KEY_CASES: list[dict[str, Any]] = json.loads((KEY_HISTORY / "expected.json").read_text())["cases"]


@pytest.mark.parametrize("case", KEY_CASES, ids=lambda c: f"{c['file']}:{c['tries'][:40]}")
def test_key_history_vectors_verify_as_expected(case: dict[str, Any]) -> None:
    """Keys over time (PROTOCOL.md §4.5, §4.6): each case is a receipt and the ``--keys``
    files a verifier is given, with what it must conclude."""
    got = _generator().check_key_case(KEY_HISTORY, case)
    assert got == (case["ok"], case["reason"], case["caveats"]), case["tries"]


# ---------------------------------------------------------------- transcripts

TRANSCRIPTS = VECTORS / "transcripts"
TRANSCRIPT_EXPECTED: dict[str, Any] = json.loads((TRANSCRIPTS / "expected.json").read_text())
TRANSCRIPT_VECTORS = TRANSCRIPT_EXPECTED["vectors"]


@pytest.mark.parametrize("vector", TRANSCRIPT_VECTORS, ids=[v["file"] for v in TRANSCRIPT_VECTORS])
def test_transcript_vector_gives_the_expected_result(vector: dict[str, Any],
                                                     keys: Keyring) -> None:
    result = check_transcript((TRANSCRIPTS / vector["file"]).read_bytes(), keys)
    assert result.ok == vector["ok"], result.summary()
    if vector["ok"]:
        assert result.summary() == vector["summary"]
        assert list(result.unaccounted) == vector["unaccounted"]
        assert list(result.unchecked) == vector["unchecked"]
    else:
        assert result.reason == vector["reason"], result.diagnosis


def test_transcript_vectors_cover_the_settled_rules_and_every_file_is_listed() -> None:
    listed = {v["file"] for v in TRANSCRIPT_VECTORS}
    assert listed == {str(p.relative_to(TRANSCRIPTS)) for p in TRANSCRIPTS.rglob("*.transcript")}
    reasons = {v.get("reason") for v in TRANSCRIPT_VECTORS}
    # §11.5 3.1 and 3.2 (a malformed doc), 5.5 and 5.6 (what binds a header), 5.10 (refused
    # envelopes count towards first; what a key statement may carry).
    assert {"bad_transcript", "bad_header", "bad_signature", "hash_mismatch",
            "ciphertext_mismatch", "bad_chunk"} <= reasons
    assert any(v["unaccounted"] for v in TRANSCRIPT_VECTORS if v["ok"])


def test_protocol_lists_every_transcript_vector_with_its_reason() -> None:
    text = (ROOT / "schemas" / "PROTOCOL.md").read_text()
    for vector in TRANSCRIPT_VECTORS:
        name = Path(vector["file"]).stem
        row = next((line for line in text.splitlines()
                    if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        assert row.rstrip().endswith(f"| `{vector.get('reason') or 'OK'}` |"), row
# ---------------------------------------------------------------- identity files (§4.3)

IDENTITY_CASES: list[dict[str, Any]] = json.loads(
    (KEYS / "invalid" / "expected.json").read_text())["cases"]


@pytest.mark.parametrize("case", IDENTITY_CASES, ids=lambda c: c["file"])
def test_invalid_identity_file_vector_is_refused_for_its_reason(case: dict[str, Any]) -> None:
    with pytest.raises(VerificationError) as err:
        load_public(KEYS / "invalid" / case["file"])
    assert err.value.reason == case["reason"]


def test_every_identity_file_vector_is_listed_and_in_the_protocol() -> None:
    listed = {c["file"] for c in IDENTITY_CASES}
    assert listed == {p.name for p in (KEYS / "invalid").glob("*.pub")}
    text = (ROOT / "schemas" / "PROTOCOL.md").read_text()
    for case in IDENTITY_CASES:
        name = Path(case["file"]).stem
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")),
                   None)
        assert row is not None and row.rstrip().endswith(f"| `{case['reason']}` |"), name
