"""A listed acknowledgement handed over as a stream: a header, then its entries a batch at a
time, signed and committed only whole (local-api.yaml, ``AckStream``).

Each batch is checked as a JSON acknowledgement's items are (the ack schema, the lifecycle of
each item against what it says now, an item restating exactly that left out), looking up only
that batch's items, and staged (``staging``) as statements not yet signed: the header's count is
known only at the end. ``finish`` then makes each entry (``AckStream``: the very bytes
``documents.sign_ack`` makes), a page at a time, signs the header over their root and, in ONE
transaction, stores the acknowledgement, publishes its entries with each item's latest
statement and seals its chunks into the outbox. A bad entry anywhere refuses all of it, naming
it by its place in the stream; ``abort`` leaves nothing behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bridge.core.errors import InputError
from bridge.core.streaming import MAX_STREAMED_ITEMS, AckStream
from bridge.engine.outbound import Outbound, ack_listed, check_queue
from bridge.engine.states import DocumentState, move_document
from bridge.engine.streaming import shifted
from bridge.records.schema import validate
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")
PAGE = 10_000  # staged statements signed at once
_PLACEHOLDER = [{"id": "placeholder", "status": "RECEIVED"}]


@dataclass(kw_only=True)
class StreamedAck:
    """One listed acknowledgement being streamed: its document, where its entries wait."""

    row: DocumentRow
    stage: int
    last_ack: int | None  # the document's latest acknowledgement when the stream began
    read: int = 0  # entries read so far (the next one's place in the stream)
    staged: int = 0
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
        return StreamedAck(row=row, stage=self.e.store.open_stage(),
                           last_ack=self.e.store.last_ack_created(row.rowid))

    def add(self, s: StreamedAck, raw_items: list[Any]) -> None:
        """Check and stage the next batch of entries (this batch's items looked up alone)."""
        first, store, doc = s.read, self.e.store, s.row.rowid
        s.read += len(raw_items)
        if s.read > MAX_STREAMED_ITEMS:  # as many as a JSON body may list (ack.schema.json)
            raise InputError(f"more than {MAX_STREAMED_ITEMS} items",
                             field=f"items[{MAX_STREAMED_ITEMS}]", code="too_large")
        try:
            validate("ack", {"items": raw_items})
            index = store.item_index_of(doc, [raw["id"] for raw in raw_items])
            current = self._current(doc, index)
            undeclared = (store.undeclared_statements(doc)
                          if any(raw["id"] not in index for raw in raw_items) else {})
            declared_status = {k: v[0] for k, v in current.items()}
            statements = current | undeclared
            items = ack_listed(s.row.id, raw_items, index, declared_status,
                               {k: v[0] for k, v in undeclared.items()}, statements)
        except InputError as err:
            raise shifted(err, first) from None
        line = {raw["id"]: first + n for n, raw in enumerate(raw_items)}
        rows = []
        for item in items:
            key = statements.get(item.id, ("unacknowledged",))[0]
            s.changed[key] = s.changed.get(key, 0) + 1
            declared = index.get(item.id)
            rows.append((s.staged, item.id, declared[1] if declared else None,
                         declared[0] if declared else None, item.status, item.reason,
                         item.evidence, line[item.id]))
            s.staged += 1
        store.stage_listed_acks(s.stage, rows)

    def _current(self, doc: int, index: dict[str, tuple[int, bytes]]
                 ) -> dict[str, tuple[str, str | None, str | None]]:
        """What the batch's declared items say now, by item id."""
        by_index = self.e.store.statements_at(doc, [n for n, _ in index.values()])
        return {item_id: by_index[n] for item_id, (n, _) in index.items() if n in by_index}

    def finish(self, s: StreamedAck) -> dict[str, Any]:
        """Sign and commit the whole acknowledgement (none if nothing changes)."""
        e, row = self.e, s.row
        e.guard.writable()
        if s.read == 0:
            raise InputError("a streamed acknowledgement lists at least one item",
                             field="items", code="bad_stream")
        if e.store.last_ack_created(row.rowid) != s.last_ack:
            # Another acknowledgement of it committed meanwhile: the lifecycle was checked
            # against statements that no longer hold.
            raise InputError(f"{row.id} was acknowledged meanwhile; send this one again",
                             field="id", code="ambiguous")
        if s.staged == 0:
            return {"ack_id": None, "items": 0, "changed": {}}
        check_queue(e, row.peer)  # the queue may have filled while the entries came
        now = max(e.now(), (s.last_ack or 0) + 1)
        stream = AckStream(answers=e.guard.stored_header(row), ack_id=e.new_id("ack"),
                           created=now, count=s.staged, salt_key=e.random_bytes(32),
                           chunk=self.outbound.chunk)
        after = -1
        while page := e.store.staged_statements(s.stage, after, PAGE):
            # Checked as AckItems when they were staged; made into entries without them.
            leaves = stream.add_statements([(item_id, lh, st, reason, evidence)
                                            for _, item_id, lh, st, reason, evidence in page])
            e.store.set_staged_leaves(s.stage, zip(leaves, (r[0] for r in page), strict=True))
            after = page[-1][0]
        signed = stream.finish(e.trust.me)
        with e.store.transaction():
            ack_row = e.record_document("out", signed, row.peer, answers=row.rowid, now=now)
            e.store.publish_listed_ack_stage(s.stage, ack=ack_row, doc=row.rowid, at=now)
            if e.store.acknowledged_count(row.rowid) == row.count:
                move_document(e.store, row, DocumentState.ACKNOWLEDGED, now)
            self.outbound.seal_staged(stream, s.stage, row.peer, (ack_row, signed.digest), now)
        self.abort(s)
        e.notify()
        log.info("acknowledged %d listed items of %s (streamed)", s.staged, row.id)
        return {"ack_id": signed.header.id, "items": s.staged, "changed": s.changed}

    def abort(self, s: StreamedAck) -> None:
        self.e.store.drop_stage(s.stage)


__all__ = ["AckStreaming", "StreamedAck"]
