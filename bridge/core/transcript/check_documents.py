"""Step 3 of a transcript check (PROTOCOL.md §11.5): each document and acknowledgement signed
by its issuer, between the two parties, listed once, in order, its entries (read from the file
as they come) those its header signs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bridge.core import merkle
from bridge.core.crypto.identity import Keyring
from bridge.core.documents import ACK, DocumentHeader, SignedHeader, check_entries_tree
from bridge.core.errors import VerificationError
from bridge.core.pieces import Opener
from bridge.core.transcript import layout
from bridge.core.transcript.check_state import CheckedDocument, Times, fail, not_revoked
from bridge.core.transcript.layout import DocumentAt

TREE_BATCH = 4096  # leaves hashed into the tree at once


def check_documents(raw: Iterable[DocumentAt], parties: tuple[str, str], keys: Keyring,
                    times: Times, open_file: Opener) -> list[CheckedDocument]:
    # 3. Documents and acknowledgements, in order (their entries read from the file).
    docs: list[CheckedDocument] = []
    by_digest: dict[bytes, CheckedDocument] = {}
    for n, item in enumerate(raw):
        where = f"documents[{n}]"
        # 3.1 Shape: {doc: {header: bin, sig: bin}, entries: [bin] | nil}. A ``doc`` of
        #     another shape is the transcript's fault (bad_transcript); header bytes that do
        #     not decode as a document header are the header's (3.2, bad_header).
        if (item.keys != {"doc", "entries"} or not _is_signed_header_shape(item.doc)
                or not item.entries_are_bins):
            raise fail(f"{where} is not {{doc: {{header, sig}}, entries}}", "bad_transcript")
        # 3.2 Header and signature (PROTOCOL.md §6.2).
        try:
            signed = SignedHeader.parse(item.doc)
        except VerificationError as exc:
            raise fail(f"{where}: {exc.message}", exc.reason) from exc
        issuer = signed.check_signature(keys)
        h = signed.header
        not_revoked(keys, issuer, h.created, f"{h.type} {h.id}")
        doc = CheckedDocument(position=n, signed=signed, entries=item.entries)
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
        # 3.6 Entries, when included: count and root (PROTOCOL.md §6.3), hashed as they are
        #     read, a batch at a time (the tree needs only its frontier).
        if doc.entries is not None:
            _check_tree(h, layout.entries(open_file, doc.entries))
        times.see(h.created)
        docs.append(doc)
        by_digest[signed.digest] = doc
    return docs


def _check_tree(header: DocumentHeader, leaves: Iterable[bytes]) -> None:
    builder = merkle.RootBuilder()
    batch: list[bytes] = []
    for leaf in leaves:
        batch.append(merkle.leaf_hash(leaf))
        if len(batch) == TREE_BATCH:
            builder.extend(batch)
            batch.clear()
    builder.extend(batch)
    check_entries_tree(header, builder.size, builder.root())


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


__all__ = ["check_documents"]
