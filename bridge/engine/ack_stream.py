"""A listed acknowledgement handed over as a stream: a header, then its entries a batch at a
time, signed and committed only whole (local-api.yaml, ``AckStream``).

Each batch is checked as a JSON acknowledgement's items are (the ack schema, the lifecycle of
each item against what it says now, an item restating exactly that left out), looking up only
that batch's items, and made at once into its entries (``AckStream`` uncounted: the very bytes
``documents.sign_ack`` makes, and their leaf hashes; no entry names the count, which only the
header says), staged (``staging``) as ``ack_entries`` keeps them. ``finish`` signs the header
over their root and, in ONE transaction, stores the acknowledgement, copies its entries into
``ack_entries`` with each item's latest statement (in SQL, never back through Python) and seals
its chunks into the outbox. A bad entry anywhere refuses all of it, naming it by its place in
the stream; ``abort`` leaves nothing behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bridge.core.documents import AckItem
from bridge.core.errors import InputError
from bridge.core.streaming import MAX_STREAMED_ITEMS, AckStream
from bridge.engine.outbound import Index, Outbound, Statement, ack_listed, check_queue
from bridge.engine.states import DocumentState, move_document
from bridge.engine.stream_batch import shifted
from bridge.records.schema import validate
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")
_PLACEHOLDER = [{"id": "placeholder", "status": "RECEIVED"}]


@dataclass(kw_only=True)
class StreamedAck:
    """One listed acknowledgement being streamed: its document, where its entries wait."""

    row: DocumentRow
    stage: int
    last_ack: int | None  # the document's latest acknowledgement when the stream began
    entries: AckStream  # the entries made so far: their salts, leaf hashes, chunk roots
    read: int = 0  # entries read so far (the next one's place in the stream)
    refused: bool = False  # a batch was refused: nothing more is taken or signed
    changed: dict[str, int] = field(default_factory=dict)


class AckStreaming:
    def __init__(self, outbound: Outbound) -> None:
        self.outbound = outbound
        self.e = outbound.e

    def begin(self, doc_id: str, header: object) -> StreamedAck:
        """Check the header (an acknowledgement without ``items``) and the document."""
        self.e.guard.writable()
        if not isinstance(header, dict):
            raise InputError("the first line is the acknowledgement's header, a JSON object",
                             field="$", code="bad_stream")
        if "items" in header or "all" in header:
            raise InputError("a streamed acknowledgement lists its items, one a line, after "
                             "its header", field="items" if "items" in header else "all",
                             code="bad_stream")
        validate("ack", {**header, "items": _PLACEHOLDER})
        row = self.outbound.acknowledgeable(doc_id)
        self.e.guard.document_statuses_hold(row)
        check_queue(self.e, row.peer)  # backpressure before a byte is staged (§8.7)
        # Its time (and its id, which names a time) is decided when it is signed: a long
        # stream must not sign an old time.
        entries = AckStream(answers=self.e.guard.stored_header(row), ack_id=None,
                            created=None, count=None, salt_key=self.e.random_bytes(32),
                            chunk=self.outbound.chunk)
        return StreamedAck(row=row, stage=self.e.store.open_ack_stage(), entries=entries,
                           last_ack=self.e.store.last_ack_created(row.rowid))

    def add(self, s: StreamedAck, raw_items: list[Any]) -> None:
        """Check the next batch of entries (this batch's items looked up alone), make them
        and stage them. After a refusal the stream takes nothing more and is never signed."""
        if s.refused:
            raise InputError("this stream was refused already", field="items",
                             code="bad_stream")
        s.refused = True  # until the batch is staged whole
        first = s.read
        s.read += len(raw_items)
        if s.read > MAX_STREAMED_ITEMS:  # as many as a JSON body may list (ack.schema.json)
            raise InputError(f"more than {MAX_STREAMED_ITEMS} items",
                             field=f"items[{MAX_STREAMED_ITEMS}]", code="too_large")
        try:
            items, index, statements = self._checked(s, raw_items)
        except InputError as err:
            raise shifted(err, first) from None
        line = {raw["id"]: first + n for n, raw in enumerate(raw_items)}
        for item in items:
            key = statements.get(item.id, ("unacknowledged",))[0]
            s.changed[key] = s.changed.get(key, 0) + 1
        declared = [index.get(item.id) for item in items]
        at = s.entries.added
        # Checked as AckItems already; made into entries without them.
        leaves = s.entries.add_statements([
            (item.id, d[1] if d else None, item.status, item.reason, item.evidence)
            for item, d in zip(items, declared, strict=True)])
        self.e.store.stage_ack_entries(s.stage, [
            (at + k, d[0] if d else None, item.id, item.status, item.reason, item.evidence,
             leaf) for k, (item, d, leaf) in enumerate(zip(items, declared, leaves, strict=True))
        ], [line[item.id] for item in items])
        s.refused = False

    def _checked(self, s: StreamedAck, raw_items: list[Any]
                 ) -> tuple[list[AckItem], Index, dict[str, Statement]]:
        """The batch's new statements (``ack_listed``), the index of its declared items and
        what each of its items says now."""
        store, doc = self.e.store, s.row.rowid
        validate("ack", {"items": raw_items})
        index = store.item_index_of(doc, [raw["id"] for raw in raw_items])
        current = self._current(doc, index)
        undeclared = (store.undeclared_statements(doc)
                      if any(raw["id"] not in index for raw in raw_items) else {})
        declared_status = {k: v[0] for k, v in current.items()}
        statements = current | undeclared
        items = ack_listed(s.row.id, raw_items, index, declared_status,
                           {k: v[0] for k, v in undeclared.items()}, statements)
        return items, index, statements

    def _current(self, doc: int, index: Index) -> dict[str, Statement]:
        """What the batch's declared items say now, by item id."""
        by_index = self.e.store.statements_at(doc, [n for n, _ in index.values()])
        return {item_id: by_index[n] for item_id, (n, _) in index.items() if n in by_index}

    def finish(self, s: StreamedAck) -> dict[str, Any]:
        """Sign and commit the whole acknowledgement (none if nothing changes); the stage is
        dropped whatever comes of it."""
        try:
            return self._commit(s)
        finally:
            self.abort(s)

    def _commit(self, s: StreamedAck) -> dict[str, Any]:
        e, row, entries = self.e, s.row, s.entries
        e.guard.writable()
        if s.read == 0:
            raise InputError("a streamed acknowledgement lists at least one item",
                             field="items", code="bad_stream")
        if s.refused:
            raise InputError("this stream was refused already", field="items",
                             code="bad_stream")
        if e.store.last_ack_created(row.rowid) != s.last_ack:
            # Another acknowledgement of it committed meanwhile: the lifecycle was checked
            # against statements that no longer hold.
            raise InputError(f"{row.id} was acknowledged meanwhile; send this one again",
                             field="id", code="ambiguous")
        if entries.added == 0:
            return {"ack_id": None, "items": 0, "changed": {}}
        check_queue(e, row.peer)  # the queue may have filled while the entries came
        now = max(e.now(), (s.last_ack or 0) + 1)
        signed = entries.finish(e.trust.me, created=now, ack_id=e.new_id("ack"))
        with e.store.transaction():
            ack_row = e.record_document("out", signed, row.peer, answers=row.rowid, now=now)
            e.store.publish_ack_stage(s.stage, ack=ack_row, doc=row.rowid, at=now)
            if e.store.acknowledged_count(row.rowid) == row.count:
                move_document(e.store, row, DocumentState.ACKNOWLEDGED, now)
            self.outbound.seal_entries(
                entries, lambda first, n: e.store.ack_leaves_range(ack_row, first, n),
                row.peer, (ack_row, signed.digest), now)
        e.notify()
        log.info("acknowledged %d listed items of %s (streamed)", entries.added, row.id)
        return {"ack_id": signed.header.id, "items": entries.added, "changed": s.changed}

    def abort(self, s: StreamedAck) -> None:
        self.e.store.drop_stage(s.stage)


__all__ = ["AckStreaming", "StreamedAck"]
