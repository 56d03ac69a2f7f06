"""Building receipt bundles from signed documents and their acknowledgements (PROTOCOL.md
§7.1): a per-item bundle for one item, all of them in one pass, or the whole-document bundle.
The builder refuses what a verifier would refuse. Pure: no I/O, no clock, no randomness."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bridge.core import codec
from bridge.core.documents import ACK, SignedDocument, SignedHeader
from bridge.core.entries import acknowledged_items, declared_item_ids, decode_declared_entry
from bridge.core.errors import InputError, VerificationError
from bridge.core.receipts.bundle import DOCUMENT_RECEIPT, ITEM_RECEIPT, RECEIPT_VERSION


def _acks_in_order(document: SignedDocument,
                   acks: Sequence[SignedDocument]) -> list[SignedDocument]:
    """The acknowledgements of ``document``, oldest first."""
    for n, ack in enumerate(acks):
        if ack.header.type != ACK or ack.header.answers != document.digest:
            raise InputError(f"does not acknowledge {document.header.id}", field=f"acks[{n}]")
    return sorted(acks, key=lambda a: a.header.created)


def _require_strict_order(acks: Sequence[SignedDocument]) -> None:
    """Refuse what a verifier would (step 12): two acks of one bundle at the same time. Only
    the acks that go into a bundle matter: two acks about different items may share a time
    and still give per-item receipts."""
    for a, b in itertools.pairwise(acks):
        if a.header.created == b.header.created:
            raise InputError(f"acks {a.header.id} and {b.header.id} have the same creation "
                             "time; a receipt needs a strict order", field="acks")


def _item_bundle(document: SignedDocument, index: int,
                 acks: Sequence[tuple[SignedDocument, int]]) -> bytes:
    return item_bundle(document.signed, document.leaves[index], document.proof(index),
                       [(ack.signed, ack.leaves[i], ack.proof(i)) for ack, i in acks])


def item_bundle(document: SignedHeader, entry: bytes, proof: Sequence[bytes],
                acks: Sequence[tuple[SignedHeader, bytes, Sequence[bytes]]]) -> bytes:
    """A per-item bundle from its parts: the signed document header, the item's entry and its
    inclusion proof, and for each acknowledgement (oldest first) its signed header, the
    item's entry in it and that entry's proof (for a caller that never holds the documents
    whole; ``build_item_receipt`` checks the order, such a caller checks it too)."""
    # Keys in canonical (sorted) order and every value bytes or a list of them: already
    # canonical, so pack_canonical is exact (codec rule 3).
    return codec.pack_canonical({
        "acks": [{"ack": ack.to_map(), "entry": ack_entry, "proof": list(ack_proof)}
                 for ack, ack_entry, ack_proof in acks],
        "document": document.to_map(),
        "entry": entry,
        "proof": list(proof),
        "type": ITEM_RECEIPT,
        "v": RECEIPT_VERSION,
    })


def _ack_positions(ack: SignedDocument) -> dict[str, tuple[int, bool]]:
    """Item id → (index in the ack, whether it names a declared entry)."""
    return {item_id: (n, leaf is not None)
            for n, (item_id, _, leaf) in enumerate(acknowledged_items(ack.leaves))}


def _declared_index(document: SignedDocument, item_id: str) -> int | None:
    """Where ``item_id`` is declared in ``document``; an entry that does not decode cannot be
    the one asked for."""
    for n, leaf in enumerate(document.leaves):
        try:
            entry = decode_declared_entry(leaf, n)
        except VerificationError:
            continue
        if entry.item_id == item_id:
            return n
    return None


def build_item_receipt(document: SignedDocument, item_id: str,
                       acks: Sequence[SignedDocument]) -> bytes:
    """The per-item receipt of ``item_id``: its declared entry and every acknowledgement of it
    among ``acks`` (which may acknowledge other items too), oldest first."""
    index = _declared_index(document, item_id)
    if index is None:
        raise InputError(f"item {item_id!r} is not in {document.header.id}", field="item_id")
    chosen: list[tuple[SignedDocument, int]] = []
    for ack in _acks_in_order(document, acks):
        found = _ack_positions(ack).get(item_id)
        if found is not None and found[1]:
            chosen.append((ack, found[0]))
    if not chosen:
        raise InputError(f"item {item_id!r} has no acknowledgement of its declared entry",
                         field="item_id")
    _require_strict_order([ack for ack, _ in chosen])
    return _item_bundle(document, index, chosen)


def build_item_receipts(document: SignedDocument,
                        acks: Sequence[SignedDocument]) -> dict[str, bytes]:
    """Per-item receipts of every acknowledged declared item, in one pass (for export)."""
    ordered = _acks_in_order(document, acks)
    positions = [_ack_positions(a) for a in ordered]
    out: dict[str, bytes] = {}
    for index, item_id in enumerate(declared_item_ids(document.leaves)):
        chosen = [(ack, pos[item_id][0]) for ack, pos in zip(ordered, positions, strict=True)
                  if item_id in pos and pos[item_id][1]]
        if chosen:
            _require_strict_order([ack for ack, _ in chosen])
            out[item_id] = _item_bundle(document, index, chosen)
    return out


def build_document_receipt(document: SignedDocument, acks: Sequence[SignedDocument]) -> bytes:
    """The whole-document receipt: the document and all its acknowledgements, oldest first."""
    if not acks:
        raise InputError("a receipt needs at least one acknowledgement", field="acks")
    ordered = _acks_in_order(document, acks)
    _require_strict_order(ordered)
    return codec.encode({"v": RECEIPT_VERSION, "type": DOCUMENT_RECEIPT,
                         "document": document.to_map(), "acks": [a.to_map() for a in ordered]})
