"""A transcript checked from its file a piece at a time (``check_transcript_file``, what
``bridge audit export`` and ``bridge verify`` do): damaged and hostile files are refused with
a reason naming where, never a traceback, and a length field that claims more than the file
holds costs nothing. The exchange is the synthetic one of ``test_transcript``.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from test_transcript import T0, Exchange, edit, ex  # noqa: F401 (ex: the fixture)

from bridge.core import codec, documents, merkle
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item
from bridge.core.pieces import of_bytes
from bridge.core.receipts import items as step4
from bridge.core.transcript import (
    TranscriptDocument,
    TranscriptResult,
    build_transcript,
    check_transcript,
    check_transcript_file,
    is_transcript_file,
)

# Every reason the check may give (PROTOCOL.md §2.4, §11.5): anything else is a bug.
REASONS = {
    "truncated", "trailing", "not_canonical", "malformed", "too_large", "too_deep", "utf8",
    "map_key", "float", "ext", "type", "bad_transcript", "bad_header", "bad_signature",
    "unknown_key", "wrong_issuer", "wrong_party", "duplicate_document", "unknown_document",
    "wrong_type", "wrong_document", "ack_order", "count_mismatch", "root_mismatch",
    "bad_entry", "duplicate_item", "wrong_item", "wrong_leaf", "chain_broken",
    "envelope_order", "missing_envelope", "ciphertext_mismatch", "hash_mismatch",
    "bad_receipt", "not_delivered", "receipt_mismatch", "bad_chunk", "revoked_key",
    "retired_key",
}


def from_file(tmp_path: Path, data: bytes, keys: Keyring) -> TranscriptResult:
    path = tmp_path / "t.transcript"
    path.write_bytes(data)
    return check_transcript_file(lambda: path.open("rb"), keys)


def test_the_file_and_the_bytes_give_one_result(ex: Exchange, keyring: Keyring,  # noqa: F811
                                                tmp_path: Path) -> None:
    data = ex.transcript()
    assert from_file(tmp_path, data, keyring) == check_transcript(data, keyring)
    assert from_file(tmp_path, data, keyring).ok


def test_truncated_at_every_length_is_refused_as_truncated(ex: Exchange,  # noqa: F811
                                                           keyring: Keyring) -> None:
    data = ex.transcript()
    for n in range(0, len(data), 7):
        result = check_transcript(data[:n], keyring)
        assert not result.ok and result.reason == "truncated", (n, result.summary())
        assert "at byte" in (result.diagnosis or "") or n == 0


def test_a_flipped_byte_anywhere_is_a_result_never_an_exception(
        ex: Exchange, keyring: Keyring) -> None:  # noqa: F811
    """Flip one bit of every fifth byte: each file gives a result with a known reason; what
    still verifies is only a change to an unsigned, unbound value (``exported_at``)."""
    data = ex.transcript()
    exported_at = codec.encode(T0 + 10_000_000)
    unsigned = data.find(exported_at)
    assert unsigned > 0
    for at in range(0, len(data), 5):
        result = check_transcript(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:], keyring)
        if result.ok:
            assert unsigned <= at < unsigned + len(exported_at), at
            continue
        assert result.reason in REASONS, (at, result.summary())


def test_a_flipped_byte_in_an_entry_is_its_root_that_fails(ex: Exchange,  # noqa: F811
                                                           keyring: Keyring,
                                                           tmp_path: Path) -> None:
    data = ex.transcript()
    leaf = ex.docs[0].leaves[3]
    at = data.find(leaf) + len(leaf) // 2
    result = from_file(tmp_path, data[:at] + bytes([data[at] ^ 1]) + data[at + 1:], keyring)
    assert result.reason == "root_mismatch", result.summary()


def test_an_envelope_moved_to_the_end_is_out_of_order(ex: Exchange,  # noqa: F811
                                                      keyring: Keyring,
                                                      tmp_path: Path) -> None:
    def move(v: dict[str, Any]) -> None:
        envs = v["links"][1]["envelopes"]
        envs.append(envs.pop(1))

    result = from_file(tmp_path, edit(ex.transcript(), move), keyring)
    assert result.reason == "envelope_order", result.summary()
    assert "envelope 3 stands where envelope 2 should" in (result.diagnosis or "")


def test_an_envelope_dropped_from_the_middle_is_missing(ex: Exchange,  # noqa: F811
                                                        keyring: Keyring,
                                                        tmp_path: Path) -> None:
    data = edit(ex.transcript(), lambda v: v["links"][0]["envelopes"].pop(1))
    assert from_file(tmp_path, data, keyring).reason == "missing_envelope"


def test_an_entry_dropped_is_a_count_that_does_not_match(ex: Exchange,  # noqa: F811
                                                         keyring: Keyring,
                                                         tmp_path: Path) -> None:
    data = edit(ex.transcript(), lambda v: v["documents"][0]["entries"].pop(2))
    assert from_file(tmp_path, data, keyring).reason == "count_mismatch"


def _entries_header_at(data: bytes, ex: Exchange) -> int:  # noqa: F811
    """Where the first document's entries array begins (a fixarray of its five entries)."""
    at = data.find(msgpack.packb(ex.docs[0].leaves[0], use_bin_type=True))
    assert data[at - 1] == 0x95
    return at - 1


@pytest.mark.parametrize("claimed", [0xFFFFFFFF, 999_999],
                         ids=["over-the-limit", "more-than-the-file"])
def test_an_entries_length_claiming_more_than_there_is_costs_nothing(
        ex: Exchange, keyring: Keyring, claimed: int) -> None:  # noqa: F811
    data = ex.transcript()
    at = _entries_header_at(data, ex)
    forged = data[:at] + b"\xdd" + claimed.to_bytes(4, "big") + data[at + 1:]
    tracemalloc.start()
    result = check_transcript(forged, keyring)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.reason == ("too_large" if claimed > 1_000_000 else "truncated"), result
    assert f"at byte {at}" in (result.diagnosis or "")
    assert peak < 4 << 20  # nothing reserved for what the length only claims


def test_a_bin_length_claiming_gigabytes_reads_nothing_for_it(ex: Exchange,  # noqa: F811
                                                              keyring: Keyring) -> None:
    data = ex.transcript()
    at = _entries_header_at(data, ex) + 1  # the first entry: a bin 8
    assert data[at] == 0xC4
    forged = data[:at] + b"\xc6\x7f\xff\xff\xff" + data[at + 2:]
    tracemalloc.start()
    result = check_transcript(forged, keyring)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not result.ok and result.reason in ("truncated", "too_large"), result
    assert peak < 4 << 20


def test_a_long_array_header_not_in_its_shortest_form(ex: Exchange,  # noqa: F811
                                                       keyring: Keyring) -> None:
    data = ex.transcript()
    at = _entries_header_at(data, ex)
    forged = data[:at] + b"\xdc\x00\x05" + data[at + 1:]
    result = check_transcript(forged, keyring)
    assert result.reason == "not_canonical" and f"at byte {at}" in (result.diagnosis or "")


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 4 in passes of two ids each: the five items of the exchange take three."""
    monkeypatch.setattr(step4, "PART_ITEMS", 2)


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_intact_transcript_still_holds(ex: Exchange,  # noqa: F811
                                                           keyring: Keyring) -> None:
    assert check_transcript(ex.transcript(), keyring).ok


def _exchange(alpha: PrivateIdentity, beta: PrivateIdentity, *, wrong_leaf: bool = False,
              undeclared_first: bool = True) -> bytes:
    """A manifest of twelve items and two acknowledgements, headers and entries only (no
    envelopes: step 4 comes before the links). ``wrong_leaf``: the first binds item 7 to item
    8's entry; the first names item X-1 as RECEIVED_UNDECLARED (unless ``undeclared_first``
    is False) and the second moves it to DISPUTED."""
    items = [Item(id=f"REM-PART-{n:04d}", data={"n": n}) for n in range(12)]
    manifest = documents.sign_document(alpha, doc_type="manifest", doc_id="MAN-PART",
                                       recipient="beta", created=T0, meta={}, items=items,
                                       salt_key=bytes(32))
    lh = {i.id: merkle.leaf_hash(manifest.leaves[n]) for n, i in enumerate(items)}
    bound = dict(lh, **({"REM-PART-0007": lh["REM-PART-0008"]} if wrong_leaf else {}))
    first = [AckItem(id=i.id, status="RECEIVED") for i in items]
    if undeclared_first:
        first.append(AckItem(id="X-1", status="RECEIVED_UNDECLARED"))
    ack1 = documents.sign_ack(beta, answers=manifest.signed, ack_id="ACK-PART-1",
                              created=T0 + 1, items=first, declared_leaf_hashes=bound,
                              salt_key=bytes([1]) * 32)
    ack2 = documents.sign_ack(beta, answers=manifest.signed, ack_id="ACK-PART-2",
                              created=T0 + 2, items=[AckItem(id="X-1", status="DISPUTED",
                                                             reason="not ours")],
                              declared_leaf_hashes=lh, salt_key=bytes([2]) * 32,
                              undeclared_known={"X-1"})
    return build_transcript(parties=("alpha", "beta"), exported_at=T0, documents=[
        TranscriptDocument(signed=d.signed, entries=d.leaves) for d in (manifest, ack1, ack2)],
        outbound=[], inbound=[])


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_undeclared_item_followed_across_acknowledgements_holds(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    result = check_transcript(_exchange(alpha, beta), keyring)
    assert result.ok, result.summary()


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_acknowledgement_binding_another_entry_is_caught(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    result = check_transcript(_exchange(alpha, beta, wrong_leaf=True), keyring)
    assert result.reason == "wrong_leaf", result.summary()
    assert "acknowledges another entry of item REM-PART-0007" in (result.diagnosis or "")


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_undeclared_item_never_received_is_caught(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    result = check_transcript(_exchange(alpha, beta, undeclared_first=False), keyring)
    assert result.reason == "bad_entry", result.summary()
    assert "X-1 has no declared entry and was never RECEIVED_UNDECLARED" in (
        result.diagnosis or "")


def test_is_transcript_file_skips_without_building(tmp_path: Path) -> None:
    bomb = codec.encode({"a": [[]] * 100_000, "type": "bridge.transcript"})
    assert is_transcript_file(of_bytes(bomb))
    assert not is_transcript_file(of_bytes(b"\xdf\xff\xff\xff\xff"))


def test_bridge_verify_refuses_a_damaged_transcript_file_naming_where(
        ex: Exchange, alpha: PrivateIdentity, beta: PrivateIdentity,  # noqa: F811
        tmp_path: Path) -> None:
    data = ex.transcript()
    good, bad = tmp_path / "good.transcript", tmp_path / "bad.transcript"
    good.write_bytes(data)
    at = _entries_header_at(data, ex)
    bad.write_bytes(data[:at] + b"\xdc\x00\x05" + data[at + 1:])  # a long form of 5
    keys = []
    for ident in (alpha, beta):
        keys += ["--keys", str(tmp_path / f"{ident.party}.pub")]
        (tmp_path / f"{ident.party}.pub").write_text(ident.public.dumps())
    run = subprocess.run([sys.executable, "-m", "bridge", "verify", str(good), str(bad), *keys],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"OK: {good}: transcript alpha↔beta")
    assert lines[1].startswith(f"FAIL: {bad}: ") and lines[1].endswith("[not_canonical]")
    assert f"at byte {at}" in lines[1]
