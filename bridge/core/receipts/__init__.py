"""Receipt bundles: build them, check them (a result), verify them (raises).

A receipt proves, offline and to anyone holding the two parties' public identity files, that
"A declared item X in document M, and B acknowledged it with status S at time T" (PROTOCOL.md §7).
Two forms, both canonical encodings (PROTOCOL.md §2):

- the **per-item bundle** (``bridge.receipt.item``) carries the sender's signed header, the one
  declared entry and its RFC 9162 inclusion proof, and for each acknowledgement of that item (in
  chronological order) the receiver's signed acknowledgement header, the ack entry and its proof.
  It discloses nothing about the other items: their leaves are salted (PROTOCOL.md §6.4), and the
  proof only holds sibling hashes.
- the **whole-document bundle** (``bridge.receipt.document``) carries the signed document with
  all its entries and every acknowledgement document in full. Each header signature is checked
  once and each Merkle root is recomputed from all entries, which is both faster per item and
  stronger (it also proves which items were *not* declared).

The rooms: ``bundle`` (the format's names and limits), ``result`` (what a check found),
``steps`` and ``verify`` (the numbered verification steps of PROTOCOL.md §7.3 and §7.4),
``build`` (the bundles). This package's names are the ones integrators and the other rooms
import. Pure: no I/O, no clock, no randomness.
"""

from bridge.core.crypto.identity import iso_time
from bridge.core.receipts.build import (
    build_document_receipt,
    build_item_receipt,
    build_item_receipts,
    item_bundle,
)
from bridge.core.receipts.bundle import (
    DOCUMENT_RECEIPT,
    ITEM_RECEIPT,
    MAX_ACKS_PER_ITEM,
    MAX_PROOF,
    RECEIPT_LIMITS,
)
from bridge.core.receipts.result import Check, ReceiptResult, Signer, StatusChange
from bridge.core.receipts.verify import check_receipt, verify_receipt

__all__ = [
    "DOCUMENT_RECEIPT",
    "ITEM_RECEIPT",
    "MAX_ACKS_PER_ITEM",
    "MAX_PROOF",
    "RECEIPT_LIMITS",
    "Check",
    "ReceiptResult",
    "Signer",
    "StatusChange",
    "build_document_receipt",
    "build_item_receipt",
    "build_item_receipts",
    "check_receipt",
    "iso_time",
    "item_bundle",
    "verify_receipt",
]
