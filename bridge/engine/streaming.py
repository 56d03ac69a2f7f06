"""Streamed submission: a roster or manifest handed over as a header and then its items, a
batch at a time, committed only whole.

Each batch is checked as a JSON submission's items are (the document schema, the record
schemas of its category), made into signed entries (``bridge.core.streaming``) and staged in
the store (``staging``): none of it is visible, audited or sendable. ``finish`` signs the header
over the root of all entries and, in ONE transaction, stores the document, publishes its
entries and seals its chunks into the outbox, reading the entries back a chunk at a time, as
``Outbound.submit_document`` does with a whole one. A bad item anywhere refuses all of it,
naming the item by its index in the stream, and ``abort`` leaves nothing behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bridge.core import codec, documents
from bridge.core.errors import InputError
from bridge.core.streaming import DocumentStream
from bridge.engine.context import Engine
from bridge.engine.outbound import COMPARE_PAGE, Outbound, check_queue, check_recipient
from bridge.engine.states import ItemTransport
from bridge.engine.stream_batch import BatchRules, CheckedBatch, check_batch
from bridge.records.categories import validate_submission
from bridge.records.schema import validate
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")

_PLACEHOLDER = [{"id": "placeholder"}]  # the header is checked as a submission of one item


@dataclass(kw_only=True)
class Streamed:
    """One submission being streamed: where its entries are staged and what they make.
    ``rules`` and ``salts`` are what its batches are checked and made with, wherever that is
    done (``stream_batch``): neither changes once the header is read."""

    stage: int
    peer: str
    meta: dict[str, Any]
    doc: DocumentStream
    existing: DocumentRow | None  # a document of this id already committed (a retry?)
    rules: BatchRules

    def salts(self, first: int, n: int) -> bytes:
        return self.doc.salt_bytes(first, n)


class Streaming:
    def __init__(self, engine: Engine, outbound: Outbound) -> None:
        self.e = engine
        self.outbound = outbound

    def begin(self, header: object) -> Streamed:
        """Check the header (a submission without ``items``, with their ``count``)."""
        e = self.e
        e.guard.writable()
        if not isinstance(header, dict):
            raise InputError("the first line is the document's header, a JSON object",
                             field="$", code="bad_stream")
        rest = {k: v for k, v in header.items() if k != "count"}
        if "items" in rest:
            raise InputError("a streamed document's items follow its header, one a line",
                             field="items", code="bad_stream")
        validate("document", {**rest, "items": _PLACEHOLDER})
        validate_submission(header["type"], header.get("meta"), [])
        peer, meta = header["to"], header.get("meta", {})
        check_recipient(e, peer)
        doc_id = header.get("id") or e.new_id(header["type"][0])
        doc = DocumentStream(doc_type=header["type"], doc_id=doc_id, recipient=peer,
                             created=e.now(), meta=meta, count=header.get("count", 0),
                             salt_key=e.random_bytes(32), chunk=self.outbound.chunk)
        existing = e.store.outbound_document(peer, doc_id)
        if existing is not None and not _same_header(existing, doc):  # refused at once
            raise InputError(f"document {doc_id!r} already exists with other content",
                             field="id", code="duplicate_document")
        if existing is None:  # refused before a single item is read (and again at the end)
            check_queue(e, peer)
        return Streamed(stage=e.store.open_stage(), peer=peer, meta=meta, doc=doc,
                        existing=existing, rules=BatchRules(doc_type=doc.doc_type, peer=peer,
                                                            meta=meta, count=doc.count))

    def add(self, s: Streamed, raw_items: list[Any]) -> None:
        """Check, sign and stage the next batch of items (consumed)."""
        first = s.doc.added
        self.stage(s, check_batch(s.rules, first, s.salts(first, len(raw_items)), raw_items))

    def stage(self, s: Streamed, batch: CheckedBatch) -> None:
        """Stage the next batch, checked and made into entries (here or beside: ``add``)."""
        if batch.first != s.doc.added:
            raise ValueError(f"a batch from items[{batch.first}] staged where items["
                             f"{s.doc.added}] comes next")
        s.doc.take_leaf_hashes(batch.hashes)
        self.e.store.stage_items(s.stage, batch.first, (batch.ids, batch.leaves, batch.hashes,
                                                        batch.categories, batch.roster_records))

    def finish(self, s: Streamed) -> dict[str, Any]:
        """Sign and commit the whole document, or answer for the one committed before."""
        e = self.e
        e.guard.writable()
        signed = s.doc.finish(e.trust.me)
        h = signed.header
        # Looked up again: another submission of this id may have been committed meanwhile.
        s.existing = e.store.outbound_document(s.peer, h.id)
        if s.existing is not None:
            if not (_same_header(s.existing, s.doc) and self._same_entries(s)):
                raise InputError(f"document {h.id!r} already exists with other content",
                                 field="id", code="duplicate_document")
            return {"id": h.id, "type": s.existing.type, "to": s.peer, "items": h.count,
                    "digest": s.existing.digest.hex(), "existing": True}
        check_queue(e, s.peer)  # the queue may have filled while the items came
        now = e.now()
        with e.store.transaction():
            rowid = e.record_document("out", signed, s.peer, answers=None, now=now)
            self.outbound.seal_staged(
                s.doc, s.stage, s.peer, (rowid, signed.digest), now,
                publish=lambda first, n: e.store.publish_stage(
                    s.stage, rowid, ItemTransport.QUEUED.value, first, n))
        self.abort(s)
        e.notify()
        log.info("queued %s %s for %s: %d items (streamed)", h.type, h.id, s.peer, h.count)
        return {"id": h.id, "type": h.type, "to": s.peer, "items": h.count,
                "digest": signed.digest.hex()}

    def _same_entries(self, s: Streamed) -> bool:
        """Do the staged entries hold the stored document's ids and records, in order?"""
        assert s.existing is not None
        store = self.e.store
        for first in range(0, s.doc.count, COMPARE_PAGE):
            stored = store.leaves(s.existing.rowid, first, COMPARE_PAGE)
            staged = store.staged_leaves(s.stage, first, COMPARE_PAGE)
            if len(stored) != len(staged) or not all(
                    _same_entry(a, b, n) for n, (a, b) in enumerate(zip(stored, staged,
                                                                        strict=True),
                                                                    start=first)):
                return False
        return True

    def abort(self, s: Streamed) -> None:
        """Drop what was staged (a refused or abandoned stream; or once committed)."""
        self.e.store.drop_stage(s.stage)


def _same_header(row: DocumentRow, doc: DocumentStream) -> bool:
    """Does the stored document ``row`` have the type, count and meta of ``doc``?"""
    meta = documents.DocumentHeader.from_bytes(row.header).meta
    return (row.type, row.count) == (doc.doc_type, doc.count) and \
        codec.encode(dict(meta)) == codec.encode(dict(doc.meta))


def _same_entry(stored: bytes, staged: bytes, n: int) -> bool:
    a, b = (documents.decode_declared_entry(x, n) for x in (stored, staged))
    return a.item_id == b.item_id and codec.encode(a.data) == codec.encode(b.data)


__all__ = ["Streamed", "Streaming"]
