"""Checking a receipt bundle of either form, step by step.

Every step of verification is numbered below exactly as in PROTOCOL.md §7.3 and §7.4, so that
an implementer can read the two side by side. ``check_receipt`` returns a ``ReceiptResult``
listing the checks done; ``verify_receipt`` raises ``VerificationError`` with the reason code of
the first failed check. After a failure nothing more is looked at.

Entries are read by their one decoder each (``bridge.core.entries``), headers and the wire
shapes by ``bridge.core.documents``. Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec, merkle
from bridge.core.crypto.identity import Keyring, PublicIdentity, iso_time
from bridge.core.documents import (
    DocumentHeader,
    SignedHeader,
    is_document_map,
    is_signed_header_map,
)
from bridge.core.entries import (
    DeclaredEntry,
    acknowledged_items,
    declared_item_ids,
    decode_ack_entry,
    decode_declared_entry,
)
from bridge.core.errors import BridgeError, DecodeError, VerificationError
from bridge.core.receipts.bundle import (
    DOCUMENT_KEYS,
    DOCUMENT_RECEIPT,
    ITEM_ACK_KEYS,
    ITEM_KEYS,
    ITEM_RECEIPT,
    MAX_ACK_DOCUMENTS,
    MAX_ACKS_PER_ITEM,
    MAX_PROOF,
    RECEIPT_LIMITS,
    RECEIPT_VERSION,
    UNDECLARED,
)
from bridge.core.receipts.result import ReceiptResult, Signer, StatusChange
from bridge.core.receipts.steps import (
    Checks,
    caveats,
    check_ack_header,
    check_ack_order,
    check_acknowledged_item,
    check_signature,
    fail,
    first_duplicate,
    is_proof,
    meta_batch,
    parse_header,
)

# An acknowledgement as the verifier has accepted it so far: its signed header and signer.
_SignedAck = tuple[SignedHeader, PublicIdentity]


def check_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Check a receipt bundle of either form. Never raises for bad input: the result says."""
    checks = Checks()
    try:
        return _check(data, keys, checks)
    except BridgeError as err:
        # PeerError (VerificationError, DecodeError) carries the reason as its code; anything
        # else here would be a bug, but it still must not pass as a valid receipt.
        return ReceiptResult(ok=False, kind=checks.kind, checks=checks.failed(err.message),
                             reason=err.code, diagnosis=err.message)


def verify_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Like ``check_receipt``, but raises ``VerificationError`` unless the receipt holds."""
    result = check_receipt(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "receipt does not verify",
                                reason=result.reason or "invalid")
    return result


def _check(data: bytes, keys: Keyring, checks: Checks) -> ReceiptResult:
    # Step 1: decode the bytes as one canonical value within RECEIPT_LIMITS (PROTOCOL.md §2),
    # then dispatch on its type. Nothing inside is trusted until its signature is checked.
    checks.begin("decode the bundle")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise fail("a receipt is bytes", "bad_bundle")
    try:
        bundle = codec.decode(bytes(data), RECEIPT_LIMITS)
    except DecodeError as exc:
        raise fail(f"not a canonical Bridge encoding: {exc.message}", exc.reason) from exc
    if (not isinstance(bundle, dict) or type(bundle.get("v")) is not int
            or bundle["v"] != RECEIPT_VERSION):  # msgpack true is not 1, though True == 1
        raise fail("not a version 1 Bridge receipt bundle", "bad_bundle")
    # The witnessed times (PROTOCOL.md §13.5) are checked on top by receipts.witnessed: the
    # receipt's own steps are the same with or without them.
    bundle.pop("witnessed", None)
    kind = bundle.get("type")
    if kind == ITEM_RECEIPT:
        checks.kind = "item"
        return _check_item(bundle, keys, checks)
    if kind == DOCUMENT_RECEIPT:
        checks.kind = "document"
        return _check_document(bundle, keys, checks)
    raise fail(f"unknown receipt type {str(kind)[:64]!r}", "bad_bundle")


def _check_declaring_header(value: object, keys: Keyring, checks: Checks, *,
                            with_count: bool) -> tuple[SignedHeader, PublicIdentity]:
    """Steps 2 and 3 of both forms."""
    # Step 2: the document header decodes and is a roster or manifest.
    checks.begin("document header")
    doc = parse_header(value, False, "the declaring document")
    header = doc.header
    checks.passed(f"{header.type} {header.id} from {header.issuer} to {header.recipient}"
                  + (f", {header.count} entries" if with_count else ""))

    # Step 3: the header is signed, under tag bridge/v1/document, by a key in the keyring
    # whose identity names the header's issuer; checked once for all items. (An envelope or
    # transport-receipt signature over the same bytes is made under another tag, so it cannot
    # verify here: §3.)
    checks.begin("document signature")
    declared_by = check_signature(doc, keys)
    checks.passed(f"signed by {declared_by.party} [{declared_by.fingerprint}]")
    return doc, declared_by


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
    doc, declared_by = _check_declaring_header(bundle["document"], keys, checks,
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


# ---------------------------------------------------------------- whole-document bundle (§7.4)


def _parse_document_map(value: object, what: str) -> tuple[object, list[bytes]]:
    if not is_document_map(value) or not is_signed_header_map(value["doc"]):
        raise fail(f"{what} must be {{doc: signed header, entries: [bin]}}", "bad_bundle")
    return value["doc"], value["entries"]


def _check_tree(header: DocumentHeader, leaves: Sequence[bytes], what: str) -> tuple[bytes, ...]:
    """Steps 4 and 10: the signed count and root are those of the entries present; returns
    the entries' leaf hashes."""
    if len(leaves) != header.count:
        raise fail(f"{what} {header.id} declares {header.count} entries but {len(leaves)} are "
                   "present", "count_mismatch")
    tree = merkle.MerkleTree.from_leaves(leaves)
    if not hmac.compare_digest(tree.root, header.root):
        raise fail(f"the entries of {what} {header.id} do not hash to its signed root",
                   "root_mismatch")
    return tree.levels[0]


@dataclass(kw_only=True)
class _Statuses:
    """Each declared item's latest status (None: none yet), and undeclared items' statuses,
    as the acknowledgements are read in order."""

    ids: list[str]
    leaf_hashes: Sequence[bytes]
    position: dict[str, int]
    final: list[str | None]
    undeclared: dict[str, str] = field(default_factory=dict)


def _check_document(bundle: dict[str, Any], keys: Keyring, checks: Checks) -> ReceiptResult:
    # Step 1 (continued): the shape of a whole-document bundle.
    if set(bundle) != DOCUMENT_KEYS:
        raise fail("a document receipt has exactly the fields acks, document, type, v",
                   "bad_bundle")
    doc_map, leaves = _parse_document_map(bundle["document"], "document")
    raw_acks = bundle["acks"]
    if not isinstance(raw_acks, list) or not 1 <= len(raw_acks) <= MAX_ACK_DOCUMENTS:
        raise fail(f"acks must list 1 to {MAX_ACK_DOCUMENTS} acknowledgement documents",
                   "bad_bundle")
    ack_maps = [_parse_document_map(a, f"acknowledgement {k}") for k, a in enumerate(raw_acks, 1)]
    checks.passed(f"document receipt with {len(leaves)} entries and {len(ack_maps)} "
                  "acknowledgement document(s)")

    doc, declared_by = _check_declaring_header(doc_map, keys, checks, with_count=False)
    state = _check_declared_items(doc.header, leaves, checks)
    signed_acks: list[_SignedAck] = []
    previous: int | None = None
    for k, (ack_doc, ack_leaves) in enumerate(ack_maps, 1):
        what = f"acknowledgement {k}"
        ack, acknowledged_by = check_ack_header(ack_doc, doc, keys, checks, what)
        signed_acks.append((ack, acknowledged_by))
        _check_acknowledged_items(ack.header, ack_leaves, doc.header, state, checks, what)
        previous = check_ack_order(ack.header, previous, checks, what)
    assert previous is not None  # at least one ack: step 1
    return _document_result(doc, declared_by, signed_acks, state, previous, checks, keys)


def _check_declared_items(header: DocumentHeader, leaves: list[bytes],
                          checks: Checks) -> _Statuses:
    """Steps 4 and 5 of a whole-document bundle."""
    # Step 4: the count and the root are recomputed from all the entries.
    checks.begin("document entries")
    hashes = _check_tree(header, leaves, header.type)
    checks.passed(f"{header.count} entries hash to the signed root")

    # Step 5: every entry decodes as a declared entry at its position; item ids are unique.
    checks.begin("declared items")
    ids = declared_item_ids(leaves)
    dup = first_duplicate(ids)
    if dup is not None:
        raise fail(f"item {dup} is declared twice", "duplicate_item")
    checks.passed(f"{len(ids)} distinct items")
    return _Statuses(ids=ids, leaf_hashes=hashes, position={i: n for n, i in enumerate(ids)},
                     final=[None] * len(ids))


def _check_acknowledged_items(ah: DocumentHeader, leaves: list[bytes], header: DocumentHeader,
                              state: _Statuses, checks: Checks, what: str) -> None:
    """Steps 10 and 11 of a whole-document bundle, for one acknowledgement."""
    # Step 10: its count and root, recomputed from its entries.
    checks.begin(f"{what}: entries")
    _check_tree(ah, leaves, "ack")
    checks.passed(f"{ah.count} entries hash to the signed root")

    # Step 11: every ack entry decodes at its position, names each item once, and binds
    # the declared entry of that id by its leaf hash; an entry without a leaf is a
    # RECEIVED_UNDECLARED of an id the document really does not declare.
    checks.begin(f"{what}: acknowledged items")
    entries = acknowledged_items(leaves)
    dup = first_duplicate([item_id for item_id, _, _ in entries])
    if dup is not None:
        raise fail(f"{what} acknowledges item {dup} twice", "duplicate_item")
    for item_id, status, leaf in entries:
        n = state.position.get(item_id)
        if check_acknowledged_item(what, item_id, status, leaf,
                                   None if n is None else state.leaf_hashes[n],
                                   state.undeclared, header.id):
            assert n is not None
            state.final[n] = status
    checks.passed(f"{len(entries)} items")


def _document_result(doc: SignedHeader, declared_by: PublicIdentity,
                     signed_acks: list[_SignedAck], state: _Statuses, last: int,
                     checks: Checks, keys: Keyring) -> ReceiptResult:
    header = doc.header
    counts = Counter(s for s in state.final if s is not None)
    counts.update(state.undeclared.values())
    statuses_by_id = {item_id: s for item_id, s in zip(state.ids, state.final, strict=True)
                      if s is not None}
    statuses_by_id.update(state.undeclared)
    return ReceiptResult(
        ok=True, kind="document", checks=tuple(checks.done), doc_type=header.type,
        doc_id=header.id, batch=meta_batch(header), declared_by=Signer.of(declared_by),
        acknowledged_by=Signer.of(signed_acks[-1][1]), time=iso_time(last),
        item_count=len(state.ids), ack_count=len(signed_acks),
        unacknowledged=state.final.count(None), undeclared=len(state.undeclared),
        counts=dict(counts), statuses=statuses_by_id,
        caveats=caveats(doc, declared_by, signed_acks, keys))
