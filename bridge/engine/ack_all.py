"""Acknowledging all items of a received document, in memory that does not grow with it.

``{"all": STATUS}`` acknowledges every item that has no status yet (and those whose status is
named in ``including``), in document order, except items that already say exactly this. The
store answers which items those are a page at a time (``ack_all_page``, in index order); each
is checked against the lifecycle, made into an acknowledgement entry (``AckStream``: the very
bytes ``documents.sign_ack`` makes) and stored at once where it stays, in ``ack_entries``,
under the rowid its acknowledgement will take. All of it happens in ONE transaction, which
then stores the acknowledgement, sets each item's latest status and seals the chunks into the
outbox, read back a chunk at a time: an entry is written once, not staged and copied. A
refusal (an item whose status may not change so) raises inside the transaction: nothing of it
is committed.
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
PAGE = 10_000  # items read, checked and stored at once


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
    with e.store.transaction(), e.store.entries_before_their_ack() as ack:
        _store_entries(e, row, stream, ack, including, status, reason, now)
        # The header's signature is made beside the items' new statuses, which need only the
        # entries (stored above); the acknowledgement's row and its audit record follow it.
        signing = stream.start_finish(e.trust.me, e.beside)
        e.store.set_statuses_from_uniform_ack(ack, row.rowid, status, reason, now,
                                              every_item=count == row.count)
        if e.store.acknowledged_count(row.rowid) == row.count:
            move_document(e.store, row, DocumentState.ACKNOWLEDGED, now)
        signed = signing.result()

        def record(first: int, n: int) -> None:
            """Beside the first envelope's sealing: the row needs no envelope, nor it the row."""
            if first == 0 and e.record_document("out", signed, row.peer, answers=row.rowid,
                                                now=now) != ack:
                raise AssertionError("the acknowledgement was not stored under its entries' "
                                     "rowid")

        outbound.seal_entries(stream, lambda first, n: e.store.ack_leaves_range(ack, first, n),
                              row.peer, (ack, signed.digest), now, beside=record)
    e.notify()
    log.info("acknowledged %d items of %s as %s", count, row.id, status)
    return {"ack_id": signed.header.id, "items": count, "changed": changed}


def _store_entries(e: Engine, row: DocumentRow, stream: AckStream, ack: int,
                   including: list[str], status: str, reason: str | None, at: int) -> None:
    """Every item the acknowledgement covers, checked, made into its entry and stored as
    ``ack``'s (in the caller's transaction: a refusal takes back the pages stored before)."""
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
        e.store.insert_uniform_ack_entries(
            ack=ack, doc=row.rowid, status=status, reason=reason, evidence=None, at=at,
            rows=((first + k, idx, item_id, leaves[k])
                  for k, (idx, item_id, _lh, _p) in enumerate(page)))
        after = page[-1][0]
