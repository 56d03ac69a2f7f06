"""Checking a receipt bundle of either form, step by step.

Every step of verification is numbered below exactly as in PROTOCOL.md §7.3 and §7.4, so that
an implementer can read the two side by side. ``check_receipt`` returns a ``ReceiptResult``
listing the checks done; ``verify_receipt`` raises ``VerificationError`` with the reason code of
the first failed check. After a failure nothing more is looked at.

A bundle is read a piece at a time (``parts``), whether it is a file (``check_receipt_file``)
or bytes in memory (``check_receipt``, the same check over a reader of those bytes): a
whole-document bundle's entries are never held (``document``), so a million-item document's
receipt is checked in bounded memory. Entries are read by their one decoder each
(``bridge.core.entries``), headers and the wire shapes by ``bridge.core.documents``. Pure: no
I/O but through the reader the caller gives, no clock, no randomness.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from bridge.core import merkle
from bridge.core.crypto.identity import Keyring, PublicIdentity
from bridge.core.documents import DocumentHeader, SignedHeader, is_signed_header_map
from bridge.core.entries import DeclaredEntry, decode_ack_entry, decode_declared_entry
from bridge.core.errors import BridgeError, DecodeError, VerificationError
from bridge.core.pieces import Opener, of_bytes
from bridge.core.receipts.bundle import (
    DOCUMENT_RECEIPT,
    ITEM_ACK_KEYS,
    ITEM_KEYS,
    ITEM_RECEIPT,
    MAX_ACKS_PER_ITEM,
    MAX_PROOF,
    RECEIPT_VERSION,
    UNDECLARED,
)
from bridge.core.receipts.document import check_document
from bridge.core.receipts.items import StatusSink
from bridge.core.receipts.parts import read_bundle
from bridge.core.receipts.result import ReceiptResult, Signer, StatusChange
from bridge.core.receipts.steps import (
    Checks,
    caveats,
    check_ack_header,
    check_ack_order,
    check_declaring_header,
    fail,
    is_proof,
    meta_batch,
)

# An acknowledgement as the verifier has accepted it so far: its signed header and signer.
_SignedAck = tuple[SignedHeader, PublicIdentity]


def check_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Check a receipt bundle of either form held in memory. Never raises for bad input: the
    result says."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        checks = Checks()
        return ReceiptResult(ok=False, kind="unknown", checks=checks.failed("a receipt is bytes"),
                             reason="bad_bundle", diagnosis="a receipt is bytes")
    return check_receipt_file(of_bytes(bytes(data)), keys, keep_statuses=True)[0]


def check_receipt_file(open_file: Opener, keys: Keyring, *,
                       keep_statuses: bool | StatusSink = False
                       ) -> tuple[ReceiptResult, dict[str, Any] | None]:
    """Check the receipt bundle that ``open_file`` reads, a piece at a time. Never raises for
    bad input. With the result, when it holds, the bundle as read (its small values, its
    witnessed times among them, for ``witnessed.check_witnessed_in``). ``keep_statuses``:
    the result lists each item's final status (a whole document's: as many as its items), or,
    a ``StatusSink``, they are handed to it a part at a time and the result lists none."""
    checks = Checks()
    try:
        return _check(open_file, keys, checks, keep_statuses)
    except BridgeError as err:
        # PeerError (VerificationError, DecodeError) carries the reason as its code; anything
        # else here would be a bug, but it still must not pass as a valid receipt.
        return ReceiptResult(ok=False, kind=checks.kind, checks=checks.failed(err.message),
                             reason=err.code, diagnosis=err.message), None


def verify_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Like ``check_receipt``, but raises ``VerificationError`` unless the receipt holds."""
    result = check_receipt(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "receipt does not verify",
                                reason=result.reason or "invalid")
    return result


def _check(open_file: Opener, keys: Keyring, checks: Checks,
           keep_statuses: bool | StatusSink) -> tuple[ReceiptResult, dict[str, Any]]:
    # Step 1: decode the bytes as one canonical value within RECEIPT_LIMITS (PROTOCOL.md §2),
    # a piece at a time, then dispatch on its type. Nothing inside is trusted until its
    # signature is checked.
    checks.begin("decode the bundle")
    try:
        bundle = read_bundle(open_file)
    except DecodeError as exc:
        raise fail(f"not a canonical Bridge encoding: {exc.message}", exc.reason) from exc
    if (not isinstance(bundle, dict) or type(bundle.get("v")) is not int
            or bundle["v"] != RECEIPT_VERSION):  # msgpack true is not 1, though True == 1
        raise fail("not a version 1 Bridge receipt bundle", "bad_bundle")
    # The witnessed times (PROTOCOL.md §13.5) are checked on top by receipts.witnessed: the
    # receipt's own steps are the same with or without them.
    steps = {k: v for k, v in bundle.items() if k != "witnessed"}
    kind = bundle.get("type")
    if kind == ITEM_RECEIPT:
        checks.kind = "item"
        return _check_item(steps, keys, checks), bundle
    if kind == DOCUMENT_RECEIPT:
        checks.kind = "document"
        return check_document(steps, keys, checks, keep_statuses=keep_statuses), bundle
    raise fail(f"unknown receipt type {str(kind)[:64]!r}", "bad_bundle")


# ---------------------------------------------------------------- per-item bundle (§7.3)


@dataclass(frozen=True, kw_only=True)
class _ItemAck:
    signed: object  # the wire map; step 6 decodes it
    leaf: bytes
    proof: list[bytes]


def _parse_item_bundle(bundle: dict[str, Any]) -> tuple[list[bytes], list[_ItemAck]]:
    if set(bundle) != ITEM_KEYS:
        raise fail("a per-item receipt has exactly the fields acks, document, entry, proof, "
                   "type, v", "bad_bundle")
    if not is_signed_header_map(bundle["document"]) or not isinstance(bundle["entry"], bytes):
        raise fail("document must be {header: bin, sig: bin} and entry bin", "bad_bundle")
    if not is_proof(bundle["proof"]):
        raise fail(f"proof must be at most {MAX_PROOF} hashes of 32 bytes", "bad_bundle")
    raw_acks = bundle["acks"]
    if not isinstance(raw_acks, list) or not 1 <= len(raw_acks) <= MAX_ACKS_PER_ITEM:
        raise fail(f"acks must list 1 to {MAX_ACKS_PER_ITEM} acknowledgements", "bad_bundle")
    acks = []
    for k, a in enumerate(raw_acks, 1):
        if (not isinstance(a, dict) or set(a) != ITEM_ACK_KEYS
                or not is_signed_header_map(a["ack"]) or not isinstance(a["entry"], bytes)
                or not is_proof(a["proof"])):
            raise fail(f"acknowledgement {k} must be {{ack: signed header, entry: bin, "
                       f"proof: [bin32]}}", "bad_bundle")
        acks.append(_ItemAck(signed=a["ack"], leaf=a["entry"], proof=a["proof"]))
    return bundle["proof"], acks


def _check_item(bundle: dict[str, Any], keys: Keyring, checks: Checks) -> ReceiptResult:
    # Step 1 (continued): the shape of a per-item bundle.
    proof, raw_acks = _parse_item_bundle(bundle)
    checks.passed(f"per-item receipt with {len(raw_acks)} acknowledgement(s)")
    doc, declared_by = check_declaring_header(bundle["document"], keys, checks,
                                               with_count=True)
    entry, declared_leaf = _check_declared_entry(doc.header, bundle["entry"], proof, checks)
    history: list[StatusChange] = []
    signed_acks: list[_SignedAck] = []
    previous: int | None = None
    for k, raw in enumerate(raw_acks, 1):
        what = f"acknowledgement {k}"
        ack, acknowledged_by = check_ack_header(raw.signed, doc, keys, checks, what)
        signed_acks.append((ack, acknowledged_by))
        history.append(_check_item_ack(ack.header, raw, entry, declared_leaf, checks, what))
        previous = check_ack_order(ack.header, previous, checks, what)
    header = doc.header
    last = history[-1]  # at least one ack: step 1
    return ReceiptResult(
        ok=True, kind="item", checks=tuple(checks.done), doc_type=header.type, doc_id=header.id,
        batch=meta_batch(header), declared_by=Signer.of(declared_by),
        acknowledged_by=Signer.of(signed_acks[-1][1]), time=last.time, item_id=entry.item_id,
        status=last.status, status_reason=last.reason, evidence=last.evidence,
        history=tuple(history), caveats=caveats(doc, declared_by, signed_acks, keys))


def _check_declared_entry(header: DocumentHeader, entry_bytes: bytes, proof: list[bytes],
                          checks: Checks) -> tuple[DeclaredEntry, bytes]:
    """Steps 4 and 5 of a per-item bundle: the entry and its place under the signed root."""
    # Step 4: the entry decodes as a declared entry (§6.4), at the index it names.
    checks.begin("declared entry")
    entry = decode_declared_entry(entry_bytes)
    checks.passed(f"item {entry.item_id} at index {entry.index}")

    # Step 5: its leaf hash is included under the signed root at that index, in a tree of
    # the signed count (RFC 9162 §2.1.3.2; the size comes from the signed header, since a
    # proof alone does not bind it: §10).
    checks.begin("declared entry inclusion")
    declared_leaf = merkle.leaf_hash(entry_bytes)
    if not merkle.verify_inclusion(declared_leaf, entry.index, header.count, proof, header.root):
        raise fail(f"the proof does not place item {entry.item_id} at index {entry.index} "
                   f"under the signed root of {header.id}", "bad_proof")
    checks.passed(f"leaf {entry.index} of {header.count} under root {header.root.hex()[:16]}…")
    return entry, declared_leaf


def _check_item_ack(ah: DocumentHeader, raw: _ItemAck, entry: DeclaredEntry,
                    declared_leaf: bytes, checks: Checks, what: str) -> StatusChange:
    """Steps 10 and 11 of a per-item bundle, for one acknowledgement (steps 6 to 9 done)."""
    # Step 10: the ack entry decodes, names this item, and binds the declared entry by its
    # leaf hash. An undeclared item's ack (leaf nil) has no place here: a per-item bundle
    # always proves a declared entry (§7.3, decided in §7.1).
    checks.begin(f"{what}: entry")
    ae = decode_ack_entry(raw.leaf)
    if ae.item_id != entry.item_id:
        raise fail(f"{what} is about item {ae.item_id}, not {entry.item_id}", "wrong_item")
    if ae.leaf is None:
        raise fail(f"{what} says item {ae.item_id} was not declared; a per-item receipt "
                   "proves a declared item", "undeclared")
    if ae.status == UNDECLARED:
        raise fail(f"{what} names a declared entry but says {UNDECLARED}", "bad_entry")
    if not hmac.compare_digest(ae.leaf, declared_leaf):
        raise fail(f"{what} acknowledges another entry of item {ae.item_id} (leaf "
                   f"{ae.leaf.hex()[:16]}…, not {declared_leaf.hex()[:16]}…)", "wrong_leaf")
    checks.passed(f"{ae.status} for item {ae.item_id}")

    # Step 11: the ack entry is included under the ack's signed root.
    checks.begin(f"{what}: inclusion")
    if not merkle.verify_inclusion(merkle.leaf_hash(raw.leaf), ae.index, ah.count,
                                   raw.proof, ah.root):
        raise fail(f"the proof does not place the entry of {what} at index {ae.index} "
                   f"under the signed root of ack {ah.id}", "bad_proof")
    checks.passed(f"leaf {ae.index} of {ah.count} under root {ah.root.hex()[:16]}…")
    return StatusChange(status=ae.status, reason=ae.reason, evidence=ae.evidence,
                        created=ah.created, ack_id=ah.id)
