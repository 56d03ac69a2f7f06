"""A receipt checked from its file a piece at a time (``check_receipt_file``, what ``bridge
verify`` does): damaged and hostile files are refused with the reason a whole decoding gives,
naming where, never a traceback; a length field that claims more than the file holds costs
nothing; and a whole-document receipt is checked in passes that hold a part of its items, so
that what the check holds does not grow with the file. The receipts are those of
``test_receipts`` (a manifest of six items and three acknowledgements), and one a daemon
exported (the test harness: real engines on real SQLite files).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from harness import open_pair, person, wire
from test_receipts import HOUR, T0, Exchange, _document, _items, _raw_ack, _salt, _sign_ack
from test_receipts import ex as ex
from test_witnessed_receipts import KEYS as VECTOR_KEYS
from test_witnessed_receipts import MEDIATOR, RECEIPT, W, _edit, _flip_last_line

from bridge.core import codec, pieces
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.documents import AckItem, sign_document
from bridge.core.pieces import of_bytes
from bridge.core.receipts import ReceiptResult, build_document_receipt, check_receipt
from bridge.core.receipts import items as steps_in_parts
from bridge.core.receipts.verify import check_receipt_file
from bridge.core.receipts.witnessed import check_witnessed_in

# Every reason a receipt check may give (PROTOCOL.md §7.5): anything else is a bug.
REASONS = {
    "too_large", "truncated", "trailing", "float", "ext", "map_key", "utf8", "too_deep",
    "not_canonical", "malformed", "bad_bundle", "bad_header", "wrong_type", "unknown_key",
    "wrong_issuer", "bad_signature", "bad_entry", "bad_proof", "count_mismatch",
    "root_mismatch", "duplicate_item", "wrong_document", "wrong_party", "wrong_item",
    "undeclared", "wrong_leaf", "ack_order", "revoked_key", "retired_key",
}


def from_file(tmp_path: Path, data: bytes, keys: Keyring) -> ReceiptResult:
    path = tmp_path / "r.receipt"
    path.write_bytes(data)
    return check_receipt_file(lambda: path.open("rb"), keys, keep_statuses=True)[0]


def _entries_header_at(data: bytes, ex: Exchange) -> int:
    """Where the manifest's entries array begins (a fixarray of its six entries)."""
    at = data.find(msgpack.packb(ex.doc.leaves[0], use_bin_type=True))
    assert data[at - 1] == 0x96
    return at - 1


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps 5 and 11 in passes of two ids each: the six items take three."""
    monkeypatch.setattr(steps_in_parts, "PART_ITEMS", 2)


def test_the_file_and_the_bytes_give_one_result(ex: Exchange, tmp_path: Path) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    assert from_file(tmp_path, data, ex.keys) == check_receipt(data, ex.keys)
    assert from_file(tmp_path, data, ex.keys).ok


def test_truncated_at_every_length_is_refused_as_truncated(ex: Exchange) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    for n in range(0, len(data), 3):
        result = check_receipt(data[:n], ex.keys)
        assert not result.ok and result.reason == "truncated", (n, result.summary())
        assert "at byte" in (result.diagnosis or "") or n == 0


def test_a_flipped_bit_anywhere_is_a_failure_never_an_exception(ex: Exchange) -> None:
    """Every byte of a whole-document receipt is structure, signed, hashed or a signature:
    any change at all fails, with a known reason."""
    data = build_document_receipt(ex.doc, ex.acks)
    for at in range(len(data)):
        result = check_receipt(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:], ex.keys)
        assert not result.ok and result.reason in REASONS, (at, result.summary())


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_a_flipped_bit_anywhere_still_fails(ex: Exchange) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    for at in range(0, len(data), 3):
        result = check_receipt(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:], ex.keys)
        assert not result.ok and result.reason in REASONS, (at, result.summary())


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: e.pop(3), "count_mismatch"),
    (lambda e: e.insert(2, e[2]), "count_mismatch"),
    (lambda e: e.__setitem__(4, e[4].replace(b"Samplename", b"Samplenamf")), "root_mismatch"),
], ids=["entry-dropped", "entry-repeated", "entry-changed"])
def test_an_entry_dropped_repeated_or_changed_in_the_file_fails(
        ex: Exchange, tmp_path: Path, change: Any, reason: str) -> None:
    bundle = _document(ex)
    change(bundle["document"]["entries"])
    result = from_file(tmp_path, codec.encode(bundle), ex.keys)
    assert result.reason == reason, result.summary()
    assert [c.name for c in result.checks][-1] == "document entries"


@pytest.mark.parametrize("claimed", [0xFFFFFFFF, 999_999],
                         ids=["over-the-limit", "more-than-the-file"])
def test_an_entries_length_claiming_more_than_there_is_costs_nothing(
        ex: Exchange, claimed: int) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    at = _entries_header_at(data, ex)
    forged = data[:at] + b"\xdd" + claimed.to_bytes(4, "big") + data[at + 1:]
    tracemalloc.start()
    result = check_receipt(forged, ex.keys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.reason == ("too_large" if claimed > 1_000_000 else "truncated"), result
    assert f"at byte {at}" in (result.diagnosis or "")
    assert peak < 4 << 20  # nothing reserved for what the length only claims


@pytest.mark.parametrize("where", ["entry", "acks"])
def test_a_length_claiming_gigabytes_reads_nothing_for_it(ex: Exchange,
                                                          where: str) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    if where == "entry":  # the first entry's bin length
        at = _entries_header_at(data, ex) + 1
        assert data[at] == 0xC4
        forged = data[:at] + b"\xc6\x7f\xff\xff\xff" + data[at + 2:]
    else:  # the acknowledgements' array: the bundle's first key's value
        at = data.find(b"\xa4acks") + 5
        assert data[at] == 0x93
        forged = data[:at] + b"\xdd\x00\x0f\xff\xff" + data[at + 1:]
    tracemalloc.start()
    result = check_receipt(forged, ex.keys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not result.ok and result.reason in ("truncated", "too_large"), result
    assert peak < 4 << 20


def test_an_entries_header_not_in_its_shortest_form_is_not_canonical(
        ex: Exchange, tmp_path: Path) -> None:
    data = build_document_receipt(ex.doc, ex.acks)
    at = _entries_header_at(data, ex)
    result = from_file(tmp_path, data[:at] + b"\xdc\x00\x06" + data[at + 1:], ex.keys)
    assert result.reason == "not_canonical" and f"at byte {at}" in (result.diagnosis or "")


def test_a_bin_header_not_in_its_shortest_form_is_not_canonical(ex: Exchange) -> None:
    """An entry of 200-odd bytes written with a 16-bit length: the same bytes, another form."""
    data = build_document_receipt(ex.doc, ex.acks)
    at = _entries_header_at(data, ex) + 1
    assert data[at] == 0xC4
    forged = data[:at] + b"\xc5\x00" + data[at + 1:]
    assert check_receipt(forged, ex.keys).reason == "not_canonical"


def test_more_acknowledgements_than_a_receipt_holds_are_not_made_into_objects(
        ex: Exchange) -> None:
    """5,000 empty maps for acknowledgements: skipped past, refused for the shape."""
    bundle = _document(ex)
    bundle["acks"] = [{}] * 5000
    tracemalloc.start()
    result = check_receipt(codec.encode(bundle), ex.keys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.reason == "bad_bundle", result.summary()
    assert peak < 1 << 20


def test_a_bundle_map_of_many_keys_is_decoded_as_one_value(ex: Exchange) -> None:
    """Keys past the bundle's own are checked once, by the decoder, not one by one."""
    bundle = {**_document(ex), **{f"k{n:05d}": n for n in range(20_000)}}
    result = check_receipt(codec.encode(bundle), ex.keys)
    assert result.reason == "bad_bundle", result.summary()


# ------------------------------------------------------------------ in parts


def _manifest_with_acks(alpha: PrivateIdentity, beta: PrivateIdentity, n: int,
                        *, wrong_leaf: bool = False, undeclared_first: bool = True) -> bytes:
    doc = sign_document(alpha, doc_type="manifest", doc_id="M-PARTS", recipient="beta",
                        created=T0, meta={}, items=_items(n), salt_key=_salt("M-PARTS"))
    first = [AckItem(id=f"P-{k:04d}", status="RECEIVED") for k in range(n)]
    a1 = _sign_ack(beta, doc, "A-P1", T0 + HOUR, first)
    if wrong_leaf:  # item 7 bound to item 8's entry
        hashes = {e.item_id: doc.leaves[e.index] for e in doc.declared_entries()}
        from bridge.core import merkle
        a1 = _raw_ack(beta, doc, "A-P1", T0 + HOUR, [
            (i, merkle.leaf_hash(hashes["P-0008" if i.id == "P-0007" else i.id]))
            for i in first])
    undeclared = [(AckItem(id="X-1", status="RECEIVED_UNDECLARED" if undeclared_first
                           else "DISPUTED"), None)]
    a2 = _raw_ack(beta, doc, "A-P2", T0 + 2 * HOUR, undeclared)
    a3 = _raw_ack(beta, doc, "A-P3", T0 + 3 * HOUR,
                  [(AckItem(id="X-1", status="DISPUTED", reason="not ours"), None)])
    return build_document_receipt(doc, [a1, a2, a3])


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_intact_receipt_says_what_it_says_whole(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _manifest_with_acks(alpha, beta, 12)
    parts = check_receipt(data, keyring)
    monkeypatch.setattr(steps_in_parts, "PART_ITEMS", 1 << 18)
    whole = check_receipt(data, keyring)
    assert parts.ok and whole.ok, parts.summary()
    assert parts.checks == whole.checks and parts.summary() == whole.summary()
    assert dict(parts.statuses) == dict(whole.statuses)
    assert parts.counts == {"RECEIVED": 12, "DISPUTED": 1} and parts.undeclared == 1


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_acknowledgement_binding_another_entry_is_caught(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    result = check_receipt(_manifest_with_acks(alpha, beta, 12, wrong_leaf=True), keyring)
    assert result.reason == "wrong_leaf", result.summary()
    assert "acknowledges another entry of item P-0007" in (result.diagnosis or "")


@pytest.mark.usefixtures("small_parts")
def test_checked_in_parts_an_undeclared_item_never_received_is_caught(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    result = check_receipt(_manifest_with_acks(alpha, beta, 12, undeclared_first=False),
                           keyring)
    assert result.reason == "bad_entry", result.summary()


@pytest.mark.usefixtures("small_parts")
def test_statuses_rewritten_in_the_file_between_two_passes_are_caught(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    """The file is read anew for each part: one rewritten in place after the first pass (every
    RECEIVED made DISPUTED, same length) must not lend the later parts its statuses."""
    data = _manifest_with_acks(alpha, beta, 12)
    forged = data.replace(b"\xa8RECEIVED", b"\xa8DISPUTED")
    assert forged != data and len(forged) == len(data)
    opened = []

    def reader() -> io.BytesIO:
        opened.append(1)
        # The bundle walked (1), then the first pass: the manifest and three acks (4).
        return io.BytesIO(data if len(opened) <= 5 else forged)

    result, _ = check_receipt_file(reader, keyring)
    assert len(opened) > 5  # more than one pass was read
    assert result.reason == "root_mismatch", result.summary()


def test_what_the_check_holds_does_not_grow_with_the_receipt(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 250 items, batches of 256 entries, blocks of 64 KiB read from the file: a
    receipt of 6,000 items is checked holding no more than one of 2,000, and far less than
    its size. That is what lets a million items (hundreds of megabytes, past the 256 MiB the
    check once read whole) stay within memory. Peaks are traced allocations, not RSS
    (bench/receipt_verify.py measures that)."""
    monkeypatch.setattr(steps_in_parts, "PART_ITEMS", 250)
    monkeypatch.setattr(steps_in_parts, "BATCH", 256)
    monkeypatch.setattr(pieces, "BLOCK", 1 << 16)
    peaks = {}
    for n in (2_000, 6_000):
        data = _manifest_with_acks(alpha, beta, n)
        path = tmp_path / f"{n}.receipt"
        path.write_bytes(data)
        del data
        tracemalloc.start()
        result, _ = check_receipt_file(lambda p=path: p.open("rb"), keyring)  # type: ignore[misc]
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.ok and result.item_count == n, result.summary()
    size = (tmp_path / "6000.receipt").stat().st_size
    assert peaks[6_000] < 1.25 * peaks[2_000], (peaks, size)
    assert peaks[6_000] < size / 2, (peaks, size)


# ------------------------------------------------------------------ witnessed times


def test_the_witnessed_times_are_those_the_check_read() -> None:
    result, bundle = check_receipt_file(of_bytes(RECEIPT), VECTOR_KEYS)
    assert result.ok and bundle is not None
    report = check_witnessed_in(bundle, VECTOR_KEYS, [MEDIATOR])
    assert report is not None and report.ok


def _verify_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    keys = W.parent / "keys"
    return subprocess.run(
        [sys.executable, "-m", "bridge", "verify", str(path), "--keys",
         str(keys / "alpha-test.pub"), "--keys", str(keys / "beta-test.pub"), *extra],
        capture_output=True, text=True, check=False, timeout=120)


def test_bridge_verify_refuses_a_receipt_whose_witnessed_times_were_tampered(
        tmp_path: Path) -> None:
    """One bit of a witness's cosignature in the witnessed part flipped: the receipt's own
    steps still hold, its witnessed times do not, and the line says why."""
    forged = _edit(lambda b: _flip_last_line(b["witnessed"][1]))
    path = tmp_path / "tampered.receipt"
    path.write_bytes(forged)
    assert check_receipt(forged, VECTOR_KEYS).ok  # the field is checked on its own
    run = _verify_cli(path, "--witness", str(W / "mediator-test.pub"))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stdout.startswith(f"FAIL: {path}: ")
    assert run.stdout.rstrip().endswith("[bad_cosignature]"), run.stdout
    # Without --witness no cosignature is checked: the times are the parties' claims.
    assert _verify_cli(path).returncode == 0


# ------------------------------------------------------------------ a daemon's receipt


def test_a_receipt_the_daemon_exported_verifies_from_its_file_in_parts(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty persons, acknowledged twice, exported by the sender's engine and checked from
    the file in parts of eight items, as ``bridge verify`` reads it; then by ``bridge verify``
    itself, and a copy cut short at its middle is refused."""
    with open_pair(tmp_path, alpha, beta) as h:
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(40)],
                    doc_id="M-1")
        h.courier.settle()
        wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "P-00003", "status": "DISPUTED",
                                                       "reason": "not this person"}])
        h.clock.advance(ms=1000)
        wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
        h.courier.settle()
        data = h.alpha.engine.receipt("M-1", None, "out")
    path = tmp_path / "M-1.receipt"
    path.write_bytes(data)
    monkeypatch.setattr(steps_in_parts, "PART_ITEMS", 8)
    result, _ = check_receipt_file(lambda: path.open("rb"), Keyring.of([alpha.public,
                                                                         beta.public]))
    assert result.ok and result.counts == {"RECEIVED": 39, "DISPUTED": 1}, result.summary()
    keys = []
    for ident in (alpha, beta):
        (tmp_path / f"{ident.party}.pub").write_text(ident.public.dumps())
        keys += ["--keys", str(tmp_path / f"{ident.party}.pub")]
    cut = tmp_path / "cut.receipt"
    cut.write_bytes(data[:len(data) // 2])
    run = subprocess.run([sys.executable, "-m", "bridge", "verify", str(path), str(cut), *keys],
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"OK: {path}: manifest M-1: 40 items declared by alpha")
    assert lines[1].startswith(f"FAIL: {cut}: ") and lines[1].endswith("[truncated]")
