"""Queries for the local API: documents, their items, receipts, deadlines, reconciliation.

Every status read from the items table is checked against the signed history on the way out
(``StoreGuard.statuses_hold``), and every receipt is verified before it leaves: a damaged store
is found and named, never served as sound.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bridge.core import deadlines, documents, merkle, receipts, times
from bridge.core.documents import SignedDocument
from bridge.core.errors import BridgeError, InputError
from bridge.core.printable import quoted
from bridge.core.receipts.witnessed import with_witnessed
from bridge.core.streaming import inclusion_proof
from bridge.engine.context import Engine
from bridge.engine.found import find_document
from bridge.engine.health import where
from bridge.engine.store_check import StoreFault, check_declared_entry
from bridge.engine.witnessed_time import JudgingClock, judging_clock
from bridge.engine.witnessing import Witnessing
from bridge.reports.build import build_reconciliation
from bridge.reports.model import ATTENTION_LISTED, Party, Provenance
from bridge.reports.render.json import to_json as report_json
from bridge.reports.rules import ATTENTION_STATUSES, REASON_STATUSES
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")

# A documents page's cursor: "~" and the position of the last document listed. No document id
# starts with "~" (document.schema.json, docId), so ``after`` takes either.
CURSOR = "~"

# The one time formatter (bridge.core.times): total, so no stored time can break a read.
iso = times.format_optional


def shown(value: Any) -> Any:
    """Free-form data as JSON can hold it. Intake refuses anything else (json_data_problem),
    but an entry stored before that check may hold a bin: shown as hex, never a 500."""
    if isinstance(value, Mapping):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value.hex() if isinstance(value, bytes) else value


COUNTS_CACHED = 256
"""Documents whose counts by status are kept between two writes."""


class Queries:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        # Document rowid -> (what its counts depend on, counts by status, acknowledged).
        self._counts: dict[int, tuple[tuple[Any, ...], dict[str, int], int]] = {}

    def find_document(self, doc_id: str, direction: str | None = None) -> DocumentRow:
        return find_document(self.e, doc_id, direction)

    def _item_counts(self, row: DocumentRow) -> tuple[dict[str, int], int]:
        """``Store.item_counts``, kept while nothing they count can have changed: counting a
        million items reads a million index entries, and a quiet document's summary is asked
        for again and again. (A counts table kept by triggers would cost every item insert
        and status change about as much again as the write itself: measured.) An item's
        status changes only with an acknowledgement of its document, stored whole or chunk by
        chunk (``answers_progress``); an inbound item's transport never changes, an outbound
        one's only until it has a status, so an outbound document is kept only once all its
        items have one; an edit behind the daemon's back changes the data version."""
        key = (self.e.store.data_version(), self.e.store.answers_progress(row.rowid),
               row.state, row.stored, row.updated)
        cached = self._counts.get(row.rowid)
        if cached is not None and cached[0] == key:
            return dict(cached[1]), cached[2]
        by_status, acknowledged = self.e.store.item_counts(row.rowid)
        if row.direction == "in" or acknowledged == row.count:
            if len(self._counts) >= COUNTS_CACHED:
                self._counts.clear()
            self._counts[row.rowid] = (key, dict(by_status), acknowledged)
        return by_status, acknowledged

    def summary(self, row: DocumentRow, clock: JudgingClock | None = None) -> dict[str, Any]:
        """A document as the API shows it; its deadline judged by ``clock`` (the witnessed
        one, when there is a recent reading: PROTOCOL.md §13.9)."""
        out: dict[str, Any] = {
            "id": row.id, "type": row.type, "direction": row.direction, "peer": row.peer,
            "state": row.state, "created": iso(row.created), "digest": row.digest.hex(),
            "meta": row.meta,
        }
        if row.type == documents.ACK:
            answered = self.e.store.document_by_rowid(row.answers) if row.answers else None
            out["answers"] = answered.id if answered else None
            out["items"] = {"total": row.count, "acknowledged": row.count, "by_status": {}}
            return out
        self.e.guard.document_statuses_hold(row)
        by_status, acknowledged = self._item_counts(row)
        out["items"] = {"total": row.count, "acknowledged": acknowledged,
                        "by_status": by_status}
        deadline = deadlines.deadline_of(row.meta)
        if deadline is not None:
            clock = clock or judging_clock(self.e)
            out["deadline"] = iso(deadline)
            out["deadline_clock"] = clock.source
            out["items"]["overdue"] = (row.count - acknowledged) if clock.now > deadline else 0
        return out

    def check_deadlines(self) -> int:
        """Raise one ``acknowledgement_overdue`` event per document whose deadline has passed
        with items still unacknowledged, by the judging clock (witnessed where it can be, and
        the event says which). Returns how many were raised."""
        now, clock = self.e.now(), judging_clock(self.e)
        raised = 0
        for row in self.e.store.documents_with_meta_key(deadlines.FIELD):
            deadline = deadlines.deadline_of(row.meta)
            if deadline is None or clock.now <= deadline or row.type == documents.ACK:
                continue
            overdue = row.count - self.e.store.acknowledged_count(row.rowid)
            if overdue <= 0 or self.e.store.has_event("acknowledgement_overdue", row.rowid):
                continue
            with self.e.store.transaction():
                self.e.store.add_event("acknowledgement_overdue", {
                    "id": row.id, "doc": row.rowid, "direction": row.direction,
                    "peer": row.peer, "deadline": iso(deadline), "overdue": overdue,
                    **clock.to_json()}, now)
            raised += 1
            log.warning("%s %s: %d items not acknowledged by the deadline %s", row.type, row.id,
                        overdue, iso(deadline))
        if raised:
            self.e.notify()
        return raised

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       limit: int, after: str | None = None) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = self.documents_page(
            direction=direction, type=type, peer=peer, limit=limit, after=after)["documents"]
        return docs

    def documents_page(self, *, direction: str | None, type: str | None, peer: str | None,
                       limit: int, after: str | None = None) -> dict[str, Any]:
        """A page of documents, newest first, and ``next``: the keyset cursor of the one
        after it (local-api.yaml, listDocuments), None on the last page."""
        rows = self.e.store.list_documents(
            direction=direction, type=type, peer=peer, include_acks=type == "ack",
            limit=limit, before=self._before(after, direction))
        clock = judging_clock(self.e)
        return {"documents": [self.summary(r, clock) for r in rows],
                "next": f"{CURSOR}{rows[-1].rowid}" if len(rows) == limit else None}

    def _before(self, after: str | None, direction: str | None) -> int | None:
        """Where a page of documents starts: below the position a cursor names, or below a
        document id (the older form: an id used both ways continues after the newer, so
        nothing is skipped, but the older may come twice; the cursor names one)."""
        if not after:
            return None
        if after.startswith(CURSOR):
            position = after.removeprefix(CURSOR)
            if not (position.isascii() and position.isdigit() and 0 < len(position) <= 18):
                raise InputError("must be the 'next' value of a previous page, or a document "
                                 "id", field="after")
            return int(position)
        rows = self.e.store.documents_by_id(after, direction)
        if not rows:
            raise InputError(f"no document {quoted(after)} to continue after", field="after")
        return max(r.rowid for r in rows)

    def document_detail(self, doc_id: str, direction: str | None) -> dict[str, Any]:
        row = find_document(self.e, doc_id, direction)
        out = self.summary(row)
        out["acks"] = [{"id": a.id, "created": iso(a.created), "items": a.count,
                        "direction": a.direction, "state": a.state}
                       for a in self.e.store.acks_of(row.rowid)]
        return out

    def _item_json(self, row: DocumentRow, r: Sequence[Any], clock: JudgingClock
                   ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": r[1], "index": r[0], "status": r[2], "reason": r[3],
                               "evidence": r[4], "updated": iso(r[5])}
        what = check_declared_entry(r[0], r[1], r[6], r[7])
        if what is not None:
            fault = StoreFault(where=where(row), what=what, doc=row.rowid)
            if r[6] is not None:  # damaged bytes are never served
                self.e.guard.corrupt(fault)
            # Its bytes missing, the item is still shown with what its row holds (its status
            # was checked against the signed history), the fault named and the alarm raised:
            # a listing that left it out would say the document never declared it.
            self.e.guard.store_fault(fault)
            out["fault"] = str(fault)
        deadline = deadlines.deadline_of(row.meta)
        if deadline is not None:
            out["overdue"] = r[2] not in documents.ACK_STATUSES and clock.now > deadline
        if row.direction == "in" and r[6] is not None:
            out["data"] = shown(documents.decode_declared_entry(r[6], r[0]).data)
        return out

    def items(self, doc_id: str, *, direction: str | None, status: str | None,
              after: str | None, limit: int) -> dict[str, Any]:
        row = find_document(self.e, doc_id, direction)
        try:
            start = int(after) if after else -1
        except ValueError as exc:
            raise InputError("must be the 'next' value of a previous page", field="after"
                             ) from exc
        page = self.e.store.items_page(row.rowid, status=status, after=start, limit=limit)
        if page:
            self.e.guard.served_statuses_hold(row, [r[0] for r in page])
        nxt = str(page[-1][0]) if len(page) == limit else None
        clock = judging_clock(self.e)
        return {"items": [self._item_json(row, r, clock) for r in page], "next": nxt}

    def item(self, doc_id: str, item_id: str, direction: str | None) -> dict[str, Any]:
        row = find_document(self.e, doc_id, direction)
        r = self.e.store.item_row(row.rowid, item_id)
        history = [{"status": h[0], "reason": h[1], "evidence": h[2], "at": iso(h[3]),
                    "ack_id": h[4]} for h in self.e.store.item_history(row.rowid, item_id)]
        if r is None:
            if not history:
                raise InputError(f"no item {quoted(item_id)} in {doc_id}", field="item_id",
                                 code="not_found")
            # Found by the receiver although never declared: it exists only in the history.
            last = history[-1]
            return {"id": item_id, "index": None, "declared": False, "status": last["status"],
                    "reason": last["reason"], "evidence": last["evidence"],
                    "updated": last["at"], "history": history}
        self.e.guard.statuses_hold(row, r[0], r[0])
        out = self._item_json(row, r, judging_clock(self.e))
        out["declared"] = True
        out["history"] = history
        return out

    def document_bundle(self, doc_id: str, direction: str | None
                        ) -> tuple[SignedDocument, list[SignedDocument]]:
        """The signed document and its acknowledgements, as needed to build receipts."""
        row = find_document(self.e, doc_id, direction)
        doc = SignedDocument(signed=self.e.guard.stored_header(row),
                             leaves=tuple(self.e.store.leaves(row.rowid)))
        acks = []
        for a in self.e.store.acks_of(row.rowid):
            acks.append(SignedDocument(signed=self.e.guard.stored_header(a),
                                       leaves=tuple(self.e.store.ack_leaves(a.rowid))))
        return doc, acks

    def receipt(self, doc_id: str, item_id: str | None, direction: str | None) -> bytes:
        """A receipt bundle: one item's (declared entry and its acknowledgement history) or the
        whole document's. Either side can export it; both hold the same signed bytes."""
        row = find_document(self.e, doc_id, direction)
        held = self.e.store.acks_of(row.rowid)  # oldest first
        if not held:
            raise InputError(f"document {doc_id} has no acknowledgement yet", field="id",
                             code="not_ready")
        if item_id is None:
            doc, acks = self.document_bundle(doc_id, direction)
            data = self._verified_receipt(
                row, lambda: receipts.build_document_receipt(doc, acks))
        else:
            # An item's receipt holds only the acknowledgements that answered that item.
            entries = self.e.store.item_ack_entries(row.rowid, item_id)
            held = [a for a in held if a.rowid in entries]
            data = self._verified_receipt(
                row, lambda: self._item_receipt(row, item_id, held, entries))
        # The witnessed times of the document and of the acknowledgements the receipt holds
        # (PROTOCOL.md §13.5).
        evidence = Witnessing(self.e).evidence({row.digest, *(a.digest for a in held)})
        return with_witnessed(data, evidence) if evidence else data

    def _item_receipt(self, row: DocumentRow, item_id: str, chosen: list[DocumentRow],
                      entries: Mapping[int, tuple[int, bytes]]) -> bytes:
        """``receipts.build_item_receipt``'s bundle, from the store a row at a time: the
        item's entry and each acknowledgement entry of it (``chosen``, oldest first, with
        ``entries``: ack rowid -> its entry's index and bytes), their proofs from the leaf
        hashes streamed in order (``streaming.inclusion_proof``), never a document held
        whole."""
        store = self.e.store
        item = store.item_row(row.rowid, item_id)
        if item is None:
            raise InputError(f"no item {quoted(item_id)} in {row.id}", field="item",
                             code="not_found")
        if item[6] is None:  # its bytes row missing: no receipt without the entry it proves
            self.e.guard.corrupt(StoreFault(where=where(row), doc=row.rowid, what=str(
                check_declared_entry(item[0], item[1], None, item[7]))))
        if not chosen:
            raise InputError(f"item {quoted(item_id)} has no acknowledgement of its declared entry",
                             field="item_id")
        for a, b in itertools.pairwise(chosen):
            if a.created == b.created:  # what a verifier refuses (receipts.build)
                raise InputError(f"acks {a.id} and {b.id} have the same creation time; a "
                                 "receipt needs a strict order", field="acks")
        acks = []
        for ack in chosen:
            n, leaf = entries[ack.rowid]
            hashes = (merkle.leaf_hash(e) for e in store.iter_ack_leaves(ack.rowid))
            acks.append((self.e.guard.stored_header(ack), leaf,
                         inclusion_proof(n, ack.count, hashes)))
        return receipts.item_bundle(
            self.e.guard.stored_header(row), item[6],
            inclusion_proof(item[0], row.count, store.iter_leaf_hashes(row.rowid)), acks)

    def _verified_receipt(self, row: DocumentRow, build: Callable[[], bytes]) -> bytes:
        """A receipt leaves only if it verifies as a mediator will check it (``bridge
        verify``): built from a damaged store it would not, and the fault is ours (as it is
        when stored bytes cannot even be decoded to build it)."""
        try:
            data = build()
        except InputError:
            raise
        except BridgeError as exc:
            self.e.guard.corrupt(StoreFault(where=where(row), doc=row.rowid,
                                     what=f"a receipt cannot be built from it: {exc}"))
        result = receipts.check_receipt(data, self.e.trust.receipt_keyring())
        if not result.ok:
            self.e.guard.corrupt(StoreFault(where=where(row), doc=row.rowid,
                                     what=f"a receipt built from it does not verify: "
                                          f"{result.diagnosis} [{result.reason}]"))
        return data

    def reconcile(self, *, peer: str | None = None, quota: int | None = None
                  ) -> dict[str, Any]:
        """The reconciliation report (``bridge.reports``), as JSON data: grouped counts from
        the store, never a walk over the items. ``quota``: an agreement-level quota a side."""
        if peer is not None and peer not in self.e.trust.peers and not self.e.store.list_documents(
                direction=None, type=None, peer=peer, limit=1):
            raise InputError(f"no pinned peer named {quoted(peer)}", field="peer",
                             code="unknown_peer")
        if quota is not None and quota < 1:
            raise InputError("must be a positive whole number", field="quota")
        self.e.guard.every_status_holds(self._rosters_and_manifests(peer))
        report = build_reconciliation(
            party=self.e.trust.me.party, peer=peer, generated=iso(self.e.now()) or "", quota=quota,
            peers=[peer] if peer else sorted(self.e.trust.peers),
            items=self.e.store.reconcile_items(peer),
            documents=self.e.store.reconcile_documents(peer),
            reasons=self.e.store.reason_counts(peer, REASON_STATUSES),
            provenance=self._provenance(peer),
            attention=self.e.store.attention_items(peer, ATTENTION_STATUSES,
                                                   ATTENTION_LISTED))
        return report_json(report)

    def _rosters_and_manifests(self, peer: str | None) -> Iterator[DocumentRow]:
        """Every roster and manifest (of ``peer``), newest first, read a page at a time."""
        before = None
        while True:
            page = self.e.store.list_documents(direction=None, type=None, peer=peer,
                                               limit=1000, before=before)
            yield from page
            if len(page) < 1000:
                return
            before = page[-1].rowid

    def _provenance(self, peer: str | None) -> Provenance:
        """The parties' fingerprints and the audit log's head, for the report's reader."""
        trust = self.e.trust
        seq, head = self.e.store.audit_head()
        parties = [Party(name=trust.me.party, fingerprint=trust.me.public.fingerprint)]
        parties += [Party(name=name, fingerprint=ident.fingerprint)
                    for name, ident in sorted(trust.peers.items()) if peer in (None, name)]
        return Provenance(parties=tuple(parties), audit_seq=seq,
                          audit_head=head.hex() if head is not None else None)
