"""Checking a whole-document bundle (PROTOCOL.md §7.4), its entries read a pass at a time
(``parts.Entries``, ``items``): what it holds is bounded whatever the document's size.
Steps are numbered as in §7.4; step 1's decoding is ``parts``. Pure: the bytes come through
the reader the caller gave."""

from __future__ import annotations

from typing import Any

from bridge.core.crypto.identity import Keyring, PublicIdentity, iso_time
from bridge.core.documents import DocumentHeader, SignedHeader, is_signed_header_map
from bridge.core.receipts import steps
from bridge.core.receipts.bundle import DOCUMENT_KEYS, MAX_ACK_DOCUMENTS
from bridge.core.receipts.items import AckSteps, Found, StatusSink, check_items
from bridge.core.receipts.parts import Entries
from bridge.core.receipts.result import ReceiptResult, Signer
from bridge.core.receipts.steps import Checks, fail


def _document_map(value: object, what: str) -> tuple[object, Entries]:
    if (not isinstance(value, dict) or set(value) != {"doc", "entries"}
            or not isinstance(value["entries"], Entries)
            or not is_signed_header_map(value["doc"])):
        raise fail(f"{what} must be {{doc: signed header, entries: [bin]}}", "bad_bundle")
    return value["doc"], value["entries"]


def check_document(bundle: dict[str, Any], keys: Keyring, checks: Checks, *,
                   keep_statuses: bool | StatusSink) -> ReceiptResult:
    # Step 1 (continued): the shape of a whole-document bundle.
    if set(bundle) != DOCUMENT_KEYS:
        raise fail("a document receipt has exactly the fields acks, document, type, v",
                   "bad_bundle")
    doc_map, entries = _document_map(bundle["document"], "document")
    raw_acks = bundle["acks"]
    if not isinstance(raw_acks, list) or not 1 <= len(raw_acks) <= MAX_ACK_DOCUMENTS:
        raise fail(f"acks must list 1 to {MAX_ACK_DOCUMENTS} acknowledgement documents",
                   "bad_bundle")
    ack_maps = [_document_map(a, f"acknowledgement {k}") for k, a in enumerate(raw_acks, 1)]
    checks.passed(f"document receipt with {entries.count} entries and {len(ack_maps)} "
                  "acknowledgement document(s)")

    # Steps 2 and 3.
    doc, declared_by = steps.check_declaring_header(doc_map, keys, checks, with_count=False)
    signed_acks: list[tuple[SignedHeader, PublicIdentity]] = []
    last: list[int] = []

    def header(k: int) -> DocumentHeader:
        # Steps 6 to 9 of acknowledgement k.
        signed_acks.append(steps.check_ack_header(ack_maps[k - 1][0], doc, keys, checks,
                                            f"acknowledgement {k}"))
        return signed_acks[-1][0].header

    def order(k: int) -> None:
        # Step 12.
        last[:] = [steps.check_ack_order(signed_acks[k - 1][0].header, last[0] if last else None,
                                   checks, f"acknowledgement {k}")]

    # Steps 4 and 5, then 6 to 12 of each acknowledgement in order.
    found = check_items(doc.header, entries.leaves, [e.leaves for _, e in ack_maps],
                        AckSteps(header=header, order=order), checks,
                        most=max(entries.count, *(e.count for _, e in ack_maps)),
                        keep_statuses=keep_statuses)
    return _result(doc, declared_by, signed_acks, found, last[0], checks, keys)


def _result(doc: SignedHeader, declared_by: PublicIdentity,
            signed_acks: list[tuple[SignedHeader, PublicIdentity]], found: Found, last: int,
            checks: Checks, keys: Keyring) -> ReceiptResult:
    header = doc.header
    return ReceiptResult(
        ok=True, kind="document", checks=tuple(checks.done), doc_type=header.type,
        doc_id=header.id, batch=steps.meta_batch(header), declared_by=Signer.of(declared_by),
        acknowledged_by=Signer.of(signed_acks[-1][1]), time=iso_time(last),
        item_count=found.items, ack_count=len(signed_acks),
        unacknowledged=found.unacknowledged, undeclared=found.undeclared,
        counts=dict(found.counts), statuses=found.statuses or {},
        caveats=steps.caveats(doc, declared_by, signed_acks, keys))


__all__ = ["check_document"]
