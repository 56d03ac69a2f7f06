"""Acknowledging all items of a received document, in memory that does not grow with it.

``{"all": STATUS}`` acknowledges every item that has no status yet (and those whose status is
named in ``including``), in document order, except items that already say exactly this. The
store answers which items those are a page at a time (``ack_all_page``, in index order); each
is checked against the lifecycle, made into an acknowledgement entry (``AckStream``: the very
bytes ``documents.sign_ack`` makes) and staged. Then, in ONE transaction, the acknowledgement
is stored, its entries published with each item's latest status, and its chunks sealed into
the outbox, read back from the stage a chunk at a time. A refusal (an item whose status may
not change so) raises before anything is committed; the stage is dropped either way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridge.core import lifecycle
from bridge.core.streaming import AckStream
from bridge.engine.context import Engine
from bridge.engine.states import DocumentState, move_document
from bridge.store.sqlite.store import DocumentRow

if TYPE_CHECKING:  # the outbound side calls this module, and hands itself over
    from bridge.engine.outbound import Outbound

log = logging.getLogger("bridge.exchange")
PAGE = 10_000  # items read, checked and staged at once


def acknowledge_all(outbound: Outbound, row: DocumentRow, body: dict[str, Any]
                    ) -> dict[str, Any]:
    """``Outbound.acknowledge`` of ``{"all": ...}`` for the received document ``row``."""
    e = outbound.e
    status, reason = body["all"], body.get("reason")
    including = list(body.get("including", ()))
    changed = e.store.ack_all_counts(row.rowid, including, status, reason)
    count = sum(changed.values())
    if count == 0:
        return {"ack_id": None, "items": 0, "changed": {}}
    # Acknowledgements of one document carry strictly increasing times (outbound.acknowledge).
    now = max(e.now(), (e.store.last_ack_created(row.rowid) or 0) + 1)
    stream = AckStream(answers=e.guard.stored_header(row), ack_id=e.new_id("ack"),
                       created=now, count=count, salt_key=e.random_bytes(32),
                       chunk=outbound.chunk)
    stage = e.store.open_stage(unique_ids=False)
    try:
        _stage_entries(e, row, stream, stage, including, status, reason)
        signed = stream.finish(e.trust.me)
        with e.store.transaction():
            ack_row = e.record_document("out", signed, row.peer, answers=row.rowid, now=now)
            e.store.publish_ack_stage(stage, ack=ack_row, doc=row.rowid, status=status,
                                      reason=reason, at=now, every_item=count == row.count)
            if e.store.acknowledged_count(row.rowid) == row.count:
                move_document(e.store, row, DocumentState.ACKNOWLEDGED, now)
            outbound.seal_staged(stream, stage, row.peer, (ack_row, signed.digest), now)
    finally:
        e.store.drop_stage(stage)
    e.notify()
    log.info("acknowledged %d items of %s as %s", count, row.id, status)
    return {"ack_id": signed.header.id, "items": count, "changed": changed}


def _stage_entries(e: Engine, row: DocumentRow, stream: AckStream, stage: int,
                   including: list[str], status: str, reason: str | None) -> None:
    """Every item the acknowledgement covers, checked, made into its entry and staged."""
    after = -1
    while stream.added < stream.count:
        page = e.store.ack_all_page(row.rowid, including, status, reason, after, PAGE)
        if not page:  # the counted items are gone: nothing else writes meanwhile
            raise AssertionError("the items to acknowledge changed while being read")
        first = stream.added
        allowed: set[str | None] = set()  # the statuses seen that may change to this one
        for _idx, item_id, _lh, previous in page:
            if previous not in allowed:  # raises InputError naming the item
                lifecycle.check(previous, status, declared=True, item_id=item_id, field="all")
                allowed.add(previous)
        leaves = stream.add_uniform([(item_id, lh) for _i, item_id, lh, _p in page], status,
                                    reason)
        e.store.stage_acks(stage, ((first + k, item_id, leaves[k], idx)
                                   for k, (idx, item_id, _lh, _p) in enumerate(page)))
        after = page[-1][0]
