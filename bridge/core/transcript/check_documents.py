"""Steps 3 and 4 of a transcript check (PROTOCOL.md §11.5): each document and acknowledgement
signed by its issuer, between the two parties, listed once, in order; and what each
acknowledgement says about each declared item, checked as a whole-document receipt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.core import documents, receipts
from bridge.core.crypto.identity import Keyring
from bridge.core.documents import ACK, SignedDocument, SignedHeader
from bridge.core.errors import VerificationError
from bridge.core.transcript.check_state import CheckedDocument, Times, fail, not_revoked


def check_documents(raw: list[Any], parties: tuple[str, str], keys: Keyring,
                    times: Times) -> list[CheckedDocument]:
    # 3. Documents and acknowledgements, in order.
    docs: list[CheckedDocument] = []
    by_digest: dict[bytes, CheckedDocument] = {}
    for n, item in enumerate(raw):
        where = f"documents[{n}]"
        # 3.1 Shape: {doc: {header: bin, sig: bin}, entries: [bin] | nil}. A ``doc`` of
        #     another shape is the transcript's fault (bad_transcript); header bytes that do
        #     not decode as a document header are the header's (3.2, bad_header).
        if (not isinstance(item, dict) or set(item) != {"doc", "entries"}
                or not _is_signed_header_shape(item["doc"])
                or not (item["entries"] is None or (isinstance(item["entries"], list) and all(
                    isinstance(e, bytes) for e in item["entries"])))):
            raise fail(f"{where} is not {{doc: {{header, sig}}, entries}}", "bad_transcript")
        # 3.2 Header and signature (PROTOCOL.md §6.2).
        try:
            signed = SignedHeader.parse(item["doc"])
        except VerificationError as exc:
            raise fail(f"{where}: {exc.message}", exc.reason) from exc
        issuer = signed.check_signature(keys)
        h = signed.header
        not_revoked(keys, issuer, h.created, f"{h.type} {h.id}")
        doc = CheckedDocument(position=n, signed=signed,
                              entries=None if item["entries"] is None else tuple(item["entries"]))
        # 3.3 Between the two parties.
        if {h.issuer, h.recipient} != set(parties):
            raise fail(f"{doc.name} is from {h.issuer} to {h.recipient}, not between "
                       f"{parties[0]} and {parties[1]}", "wrong_party")
        # 3.4 Listed once.
        if signed.digest in by_digest:
            raise fail(f"{doc.name} is listed twice", "duplicate_document")
        # 3.5 An acknowledgement answers a document listed before it, from the other side,
        #     strictly later than the previous acknowledgement of that document.
        if h.type == ACK:
            _answered(doc, by_digest).acks.append(doc)
        # 3.6 Entries, when included: count and root (PROTOCOL.md §6.3).
        if doc.entries is not None:
            SignedDocument(signed=signed, leaves=doc.entries).check(keys)
        times.see(h.created)
        docs.append(doc)
        by_digest[signed.digest] = doc
    return docs


def _answered(ack: CheckedDocument, by_digest: Mapping[bytes, CheckedDocument]
              ) -> CheckedDocument:
    """3.5 The document an acknowledgement answers: listed before it, a roster or manifest,
    named by id as by hash, sent to the acknowledgement's issuer, and last acknowledged
    before this acknowledgement was made."""
    h = ack.signed.header
    assert h.answers is not None
    target = by_digest.get(h.answers)
    if target is None:
        raise fail(f"{ack.name} answers {h.answers_id}, which is not listed before "
                   "it in the transcript", "unknown_document")
    th = target.signed.header
    if th.type == ACK:
        raise fail(f"{ack.name} answers an acknowledgement", "wrong_type")
    if h.answers_id != th.id:
        raise fail(f"{ack.name} names {h.answers_id} but answers {th.id} by hash",
                   "wrong_document")
    if h.issuer != th.recipient:
        raise fail(f"{ack.name} is issued by {h.issuer}, but {th.id} was sent to "
                   f"{th.recipient}", "wrong_party")
    if target.acks and h.created <= target.acks[-1].signed.header.created:
        raise fail(f"{ack.name} is not later than the previous acknowledgement of "
                   f"{th.id}", "ack_order")
    return target


def _is_signed_header_shape(value: object) -> bool:
    return (isinstance(value, dict) and set(value) == {"header", "sig"}
            and isinstance(value["header"], bytes) and isinstance(value["sig"], bytes))


def check_entries(docs: Sequence[CheckedDocument], keys: Keyring) -> tuple[str, ...]:
    """4. For each roster or manifest whose entries are included: its declared entries, and
    its acknowledgements' entries up to the first one not included, checked exactly as a
    whole-document receipt (PROTOCOL.md §7.4 steps 4–12). Returns the acknowledgements with
    entries that could not be checked so (for the report: what the transcript leaves out)."""
    unchecked: list[str] = []
    for doc in docs:
        if doc.signed.header.type == ACK:
            continue
        if doc.entries is None:
            unchecked += [a.signed.header.id for a in doc.acks if a.entries is not None]
            continue
        shown: list[CheckedDocument] = []
        for n, ack in enumerate(doc.acks):
            if ack.entries is None:
                unchecked += [a.signed.header.id for a in doc.acks[n:] if a.entries is not None]
                break
            shown.append(ack)
        whole = SignedDocument(signed=doc.signed, leaves=doc.entries)
        if not shown:
            ids = [documents.decode_declared_entry(e, i).item_id
                   for i, e in enumerate(doc.entries)]
            if len(set(ids)) != len(ids):
                raise fail(f"{doc.name} declares an item twice", "duplicate_item")
            continue
        bundle = receipts.build_document_receipt(
            whole, [SignedDocument(signed=a.signed, leaves=a.entries or ()) for a in shown])
        result = receipts.check_receipt(bundle, keys)
        if not result.ok:
            raise fail(f"{doc.name} and its acknowledgements: {result.diagnosis}",
                       result.reason or "bad_entry")
    return tuple(unchecked)


__all__ = ["check_documents", "check_entries"]
