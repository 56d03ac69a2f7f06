"""Applying one received chunk, inside the transaction that takes its envelope: a new inbound
document, its declared entries, or the entries of an acknowledgement of one of ours. Anything
wrong raises a ``PeerError`` (the content is refused; the envelope keeps its place in the
chain, PROTOCOL.md §8.2).
"""

from __future__ import annotations

import json
from itertools import repeat
from typing import cast

from bridge.core import chunks, documents, lifecycle
from bridge.core.ack_runs import AckColumns, ack_columns
from bridge.core.errors import VerificationError
from bridge.engine.chunk_ahead import DeclaredColumns, PreparedChunk, declared_of
from bridge.engine.context import Engine
from bridge.engine.states import DocumentState, move_document, new_state
from bridge.engine.trust import refuse_ahead
from bridge.store.sqlite.store import DocumentRow

AckRows = tuple[list[int], list[int | None], list[str], list[str], list[str | None],
                list[str | None]]
"""A chunk's ``ack_entries`` rows as columns: (entry index, index of the declared item it
names or None, item id, status, reason, evidence); the entries are the chunk's own, and the
acknowledgement, the document and the time are the same for all."""


class Intake:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    def check_chunk(self, peer: str, chunk: chunks.ReceivedChunk, now: int) -> None:
        """What a chunk's document header must be, read from no store: signed by a key of
        ``peer``'s in force at its date, issued by ``peer``, addressed to us. Raises
        ``VerificationError``. ``apply_chunk`` applies only a chunk that passed it."""
        signed = chunk.signed
        h = signed.header
        signed.check_signature(self.e.trust.keyring)
        refuse_ahead(f"{h.type} {h.id} created", h.created, now)
        reason = self.e.trust.keyring.void_reason(h.issuer_key, h.created)
        if reason is not None:
            # Dated at or after a revocation's since, or after a rotation retired the key.
            raise VerificationError(f"{h.type} {h.id} is signed by a "
                                    f"{reason.removesuffix('_key')} key", reason=reason)
        if h.issuer != peer:
            raise VerificationError(f"document issued by {h.issuer}, sent by {peer}",
                                    reason="wrong_issuer")
        if h.recipient != self.e.trust.me.party:
            raise VerificationError(f"document addressed to {h.recipient}",
                                    reason="wrong_recipient")

    def apply_chunk(self, peer: str, prepared: PreparedChunk, now: int) -> None:
        """A chunk that passed ``check_chunk``, stored (in the caller's transaction), with its
        entries' columns as ``prepared`` has them (made beside the database thread from the
        same payload), else made here."""
        chunk = prepared.chunk
        signed = chunk.signed
        h = signed.header
        row = self.e.store.document_by_digest(signed.digest)
        target = None  # the document an acknowledgement answers, when already read
        if row is None:
            row, target = self._new_inbound(peer, signed, now)
        if row.direction != "in" or row.stored != chunk.first:
            raise VerificationError(f"chunk at {chunk.first} of {h.id} out of order "
                                    f"(have {row.stored})", reason="bad_chunk")
        if h.type == documents.ACK:
            self._apply_ack_chunk(peer, row, chunk, now, target, acked=prepared.acked)
        else:
            self._store_declared(row.rowid, chunk, prepared.declared or declared_of(chunk))
        stored = self.e.store.add_stored(row.rowid, len(chunk.entries))
        if stored == h.count:
            move_document(self.e.store, row, DocumentState.RECEIVED, now)
            if h.type != documents.ACK:
                self.e.store.add_event("document_received", {
                    "id": h.id, "type": h.type, "peer": peer, "items": h.count}, now)

    def _store_declared(self, doc: int, chunk: chunks.ReceivedChunk,
                        declared: DeclaredColumns) -> None:
        """A chunk's declared entries as item rows, every entry checked and its record JSON
        data (the local API shows it as JSON, PROTOCOL.md §6.4) before any is stored
        (``declared_of``). The rows are stored from columns: no Python step (nor tuple built
        there) per item."""
        ids, categories, roster_records = declared
        if len(set(ids)) != len(ids):  # across chunks, the store's unique index says so
            raise VerificationError(f"item {_first_repeated(ids)} is declared twice in "
                                    f"{chunk.signed.header.id}", reason="duplicate_item")
        self.e.store.insert_received_items(doc, chunk.first, (
            ids, chunk.entries, chunk.leaf_hashes, categories, roster_records))

    def _new_inbound(self, peer: str, signed: documents.SignedHeader, now: int
                     ) -> tuple[DocumentRow, DocumentRow | None]:
        """The received document's new row, and for an acknowledgement the document it
        answers (read here to check it: handed over, not read again)."""
        h = signed.header
        if self.e.store.document_exists("in", peer, h.id):
            raise VerificationError(f"{peer} already sent a different document {h.id}",
                                    reason="duplicate_document")
        answers, target = None, None
        if h.type == documents.ACK:
            assert h.answers is not None
            target = self.e.store.document_by_digest(h.answers)
            if target is None or target.direction != "out" or target.peer != peer:
                raise VerificationError(f"acknowledgement {h.id} answers no document sent to "
                                        f"{peer}", reason="unknown_document")
            answers = target.rowid
            last = self.e.store.last_ack_created(target.rowid)
            if last is not None and h.created <= last:
                raise VerificationError(f"acknowledgement {h.id} is not later than the previous "
                                        f"acknowledgement of {target.id}", reason="ack_order")
        rowid = self.e.record_document("in", signed, peer, answers=answers, now=now)
        # The row as just inserted, not read back: every column is what record_document
        # wrote (stored 0, its first state, updated now; meta as stored JSON gives it back).
        row = DocumentRow(rowid=rowid, id=h.id, direction="in", peer=peer, type=h.type,
                          digest=signed.digest, header=signed.data, sig=signed.signature,
                          count=h.count, stored=0, answers=answers,
                          meta=json.loads(json.dumps(dict(h.meta), sort_keys=True)),
                          created=h.created, state=new_state("in").value, updated=now)
        return row, target

    def _apply_ack_chunk(self, peer: str, ack_row: DocumentRow, chunk: chunks.ReceivedChunk,
                         now: int, target: DocumentRow | None = None, *,
                         acked: AckColumns | None = None) -> None:
        """``target``: the answered document when ``_new_inbound`` read it (first chunk);
        ``acked``: the entries' columns when made beside (``chunk_ahead``)."""
        assert ack_row.answers is not None
        if target is None:
            target = self.e.store.document_by_rowid(ack_row.answers)
        assert target is not None and target.rowid == ack_row.answers
        at = chunk.signed.header.created
        indexes, item_idx, ids, statuses, reasons, evidence = self._checked_ack_rows(
            target, chunk, acked)
        declared = [i for i in item_idx if i is not None]
        changed = len(declared)
        # The entries stored once, as the signed history; each declared item's latest status
        # set in one statement: the same one for all (a chunk of an acknowledgement of all
        # items), else copied from the entries just stored. The rows are zipped from the
        # columns as they are stored, in C: no row is built a step of Python each.
        statement = _one_statement(statuses, reasons, evidence)
        if statement is not None:  # the chunk's shared values bound once a statement
            self.e.store.insert_uniform_ack_entries(
                ack=ack_row.rowid, doc=target.rowid, status=statement[0], reason=statement[1],
                evidence=statement[2], at=at,
                rows=zip(indexes, item_idx, ids, chunk.entries, strict=True))
        else:
            n = len(ids)
            self.e.store.insert_ack_entries(zip(
                repeat(ack_row.rowid, n), indexes, repeat(target.rowid, n), item_idx, ids,
                statuses, reasons, evidence, chunk.entries, repeat(at, n), strict=True))
        if changed and statement is not None:
            self.e.store.set_statuses_at(target.rowid, declared, *statement, at)
        elif changed:
            self.e.store.statuses_from_ack(target.rowid, ack_row.rowid, chunk.first, len(ids))
        # Acknowledgement latency: from our signing of the document to the peer's signing of
        # its acknowledgement (both clocks are the parties' own; good enough for operations).
        self.e.metrics.observe_ack_latency(max(0, at - target.created) / 1000, changed)
        self.e.store.add_event("item_status_changed", {
            "document": target.id, "ack": chunk.signed.header.id, "items": len(ids),
            "sample": ids[:20]}, now)
        last_chunk = chunk.first + len(chunk.entries) == ack_row.count
        if last_chunk and self.e.store.acknowledged_count(target.rowid) == target.count:
            if target.state != DocumentState.ACKNOWLEDGED:
                move_document(self.e.store, target, DocumentState.ACKNOWLEDGED, now)
                self.e.store.add_event("document_acknowledged", {
                    "id": target.id, "peer": peer, "items": target.count}, now)

    def _checked_ack_rows(self, target: DocumentRow, chunk: chunks.ReceivedChunk,
                          acked: AckColumns | None = None) -> AckRows:
        """The chunk's ``ack_entries`` rows as columns (``acked``, or made here), each entry
        checked against the item it names (declared, the very entry, a change its lifecycle
        allows); else ``PeerError``."""
        indexes, ids, statuses, reasons, evidence, leaves = (
            acked or ack_columns(chunk.entries, chunk.first))
        # Only this chunk's items are looked up (index, leaf hash and status in one probe):
        # memory and time per chunk do not grow with the acknowledged document.
        targets = self.e.store.ack_targets(target.rowid, ids)
        found = [t[0] for t in targets if t is not None]
        if found:  # the lifecycle is checked against the signed history, not a stale copy
            self.e.guard.range_statuses_hold(target, min(found), max(found))
        item_idx = _uniform_targets(ids, statuses, leaves, targets)
        if item_idx is None:
            item_idx = self._targets_one_by_one(target, ids, statuses, leaves, targets,
                                                undeclared=len(found) < len(ids))
        return indexes, item_idx, ids, statuses, reasons, evidence

    def _targets_one_by_one(self, target: DocumentRow, ids: list[str], statuses: list[str],
                            leaves: list[bytes | None],
                            targets: list[tuple[int, bytes, str | None] | None], *,
                            undeclared: bool) -> list[int | None]:
        """``_checked_ack_rows``' check of each entry in turn, naming the first that fails:
        the index of the declared item each names, or None (``RECEIVED_UNDECLARED``)."""
        # Items never declared are rare: look their history up only when a chunk has one.
        undeclared_status = self.e.store.undeclared_statuses(target.rowid) if undeclared else {}
        item_idx: list[int | None] = []
        seen: set[str] = set()
        for item_id, status, declared_leaf, declared in zip(ids, statuses, leaves, targets,
                                                            strict=True):
            if item_id in seen:
                raise VerificationError(f"item {item_id} acknowledged twice in one "
                                        "acknowledgement", reason="bad_ack")
            seen.add(item_id)
            if declared is None:
                if declared_leaf is not None:
                    raise VerificationError(f"acknowledged item {item_id} is not declared",
                                            reason="bad_ack")
                before = undeclared_status.get(item_id)
            elif declared_leaf != declared[1]:
                raise VerificationError(f"acknowledged item {item_id} is not the declared "
                                        "entry", reason="bad_ack")
            else:
                before = declared[2]
            if not lifecycle.allowed(before, status, declared=declared is not None):
                raise VerificationError(f"item {item_id}: {before or 'no status'} may not "
                                        f"change to {status}", reason="transition_not_allowed")
            item_idx.append(declared[0] if declared else None)
        return item_idx


def _first_repeated(ids: list[str]) -> str:
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            return item_id
        seen.add(item_id)
    raise ValueError("no item id is repeated")


def _uniform_targets(ids: list[str], statuses: list[str], leaves: list[bytes | None],
                     targets: list[tuple[int, bytes, str | None] | None]
                     ) -> list[int | None] | None:
    """``_targets_one_by_one``'s answer when every entry names a distinct declared item by
    its very entry and each change of status is one its lifecycle allows, checked on columns
    (each distinct change once); None when any is not so: the entries one by one say which."""
    if None in targets or len(set(ids)) != len(ids):
        return None
    declared = cast("list[tuple[int, bytes, str | None]]", targets)
    if [t[1] for t in declared] != leaves:
        return None
    changes = set(zip((t[2] for t in declared), statuses, strict=True))
    if not all(lifecycle.allowed(before, status, declared=True) for before, status in changes):
        return None
    return [t[0] for t in declared]


def _one_statement(statuses: list[str], reasons: list[str | None],
                   evidence: list[str | None]) -> tuple[str, str | None, str | None] | None:
    """(status, reason, evidence) when every entry of a chunk says just that, else None."""
    if len(set(statuses)) == len(set(reasons)) == len(set(evidence)) == 1:
        return statuses[0], reasons[0], evidence[0]
    return None
