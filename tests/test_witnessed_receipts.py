"""Witnessed times in a receipt (PROTOCOL.md §13.5), on the committed vectors of
schemas/vectors/witness: what each attack on the ``witnessed`` field fails with, and that the
receipt's own checks neither need nor notice it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.core import codec
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.receipts import RECEIPT_LIMITS, check_receipt
from bridge.core.receipts.witnessed import check_witnessed

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
W = VECTORS / "witness"
EXPECTED = json.loads((W / "expected.json").read_text())
RECEIPT = (W / EXPECTED["receipt"]["file"]).read_bytes()


def _id(name: str) -> PublicIdentity:
    return PublicIdentity.loads((VECTORS / "keys" / f"{name}.pub").read_bytes())


KEYS = Keyring.of([_id("alpha-test"), _id("beta-test")])
MEDIATOR = PublicIdentity.loads((W / "mediator-test.pub").read_bytes())


def _edit(change: Callable[[dict[str, Any]], None]) -> bytes:
    bundle = codec.decode(RECEIPT, RECEIPT_LIMITS)
    change(bundle)
    return codec.encode(bundle)


def test_witnessed_vector_verifies_and_says_the_bound() -> None:
    assert check_receipt(RECEIPT, KEYS).ok
    report = check_witnessed(RECEIPT, KEYS, [MEDIATOR])
    assert report is not None and report.ok
    assert report.lines() == EXPECTED["receipt"]["lines"]


def test_without_a_witness_key_the_times_are_the_parties_claims() -> None:
    report = check_witnessed(RECEIPT, KEYS)
    assert report is not None and report.ok
    assert report.lines()[-1].startswith("the times in this receipt are the parties' own")
    assert "(the party's own claim)" in report.lines()[0]


def test_a_receipt_without_the_field_has_no_witnessed_report() -> None:
    plain = (VECTORS / "receipts" / "valid" / "item-rem-0001-received.receipt").read_bytes()
    assert check_witnessed(plain, KEYS, [MEDIATOR]) is None


def _flip_last_line(entry: dict[str, Any]) -> None:
    text, sigs = entry["checkpoint"].split(b"\n\n", 1)
    lines = sigs.split(b"\n")
    name, blob = lines[-2].rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    lines[-2] = name + b" " + base64.b64encode(bytes(raw))
    entry["checkpoint"] = text + b"\n\n" + b"\n".join(lines)


def _drop_cosignature(entry: dict[str, Any]) -> None:
    entry["checkpoint"] = b"\n".join(entry["checkpoint"].split(b"\n")[:-2]) + b"\n"


def _flip_proof(entry: dict[str, Any]) -> None:
    entry["proof"][0] = bytes([entry["proof"][0][0] ^ 1]) + entry["proof"][0][1:]


def _other_record(entry: dict[str, Any]) -> None:
    entry["record"] = base64.b64decode(EXPECTED["leaves"][2])  # the second acknowledgement's
    entry["index"] = 2


def _re_signed_by_mallory(entry: dict[str, Any]) -> None:
    from bridge.core.notes import checkpoint

    mallory = PrivateIdentity.loads((VECTORS / "keys" / "mallory-test.key").read_bytes())
    cp = checkpoint.parse_checkpoint_text(entry["checkpoint"].split(b"\n\n")[0].decode() + "\n")
    entry["checkpoint"] = checkpoint.signed_checkpoint(
        cp, public=mallory.public.note_key, sign=mallory.sign_note)  # origin: alpha-test's


def _redated_record(entry: dict[str, Any]) -> None:
    fields = codec.decode(entry["record"], RECEIPT_LIMITS)
    fields["at"] -= 3_600_000  # an hour earlier than logged
    entry["record"] = codec.encode(fields)


@pytest.mark.parametrize(("attack", "reason"), [
    (_flip_last_line, "bad_cosignature"),
    (_drop_cosignature, "not_witnessed"),
    (_flip_proof, "bad_proof"),
    (_other_record, "wrong_record"),
    (_re_signed_by_mallory, "bad_checkpoint"),
    (_redated_record, "bad_proof"),
])
def test_an_attack_on_the_witnessed_times_fails_with_its_reason(
        attack: Callable[[dict[str, Any]], None], reason: str) -> None:
    data = _edit(lambda b: attack(b["witnessed"][1]))
    assert check_receipt(data, KEYS).ok  # the receipt's own checks do not look at it
    report = check_witnessed(data, KEYS, [MEDIATOR])
    assert report is not None and not report.ok
    assert report.reason == reason, report.diagnosis


def test_party_clock_ahead_of_the_witness_is_said() -> None:
    from bridge.core.receipts.witnessed import WitnessedRecord

    line = WitnessedRecord(what="acknowledgement A", logged_by="beta", claimed_at=2_000_000,
                           bounds=(("mediator", 1000),)).line()
    assert "its clock is ahead" in line


def test_a_record_logged_in_the_second_the_witness_cosigned_is_not_called_ahead() -> None:
    """A cosignature's time is whole seconds: a record the party dated 0.7 s into the second
    in which the witness cosigned it was logged in time, not by a clock ahead."""
    from bridge.core.receipts.witnessed import WitnessedRecord

    line = WitnessedRecord(what="document M", logged_by="alpha", claimed_at=1_000_700,
                           bounds=(("mediator", 1000),)).line()
    assert "ahead" not in line and "no later than 1970-01-01T00:16:40Z" in line
    late = WitnessedRecord(what="document M", logged_by="alpha", claimed_at=1_001_000,
                           bounds=(("mediator", 1000),)).line()
    assert "its clock is ahead" in late
