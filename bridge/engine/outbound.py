"""Outbound: documents and acknowledgements of ours, signed, chunked, sealed and queued.

A document is signed, split into chunks, sealed into envelopes with the next sequence numbers
and chain hashes, and committed to the outbox in ONE transaction: a 202 means all of it is on
disk, and the delivery loop only ever resends those same bytes (a retry keeps its message id
and hash, so the peer recognises it as a duplicate).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bridge.core import audit, chunks, codec, documents, envelope, lifecycle
from bridge.core.beside import Beside, Pending, inline
from bridge.core.crypto.identity import PrivateIdentity, PublicIdentity
from bridge.core.documents import AckItem, Item, SignedDocument
from bridge.core.envelope import Envelope
from bridge.core.errors import InputError
from bridge.core.link import OutboundState
from bridge.core.printable import quoted
from bridge.core.streaming import EntryStream
from bridge.engine.ack_all import acknowledge_all
from bridge.engine.backpressure import Queue, refuse_if_full
from bridge.engine.context import Engine
from bridge.engine.found import only_document
from bridge.engine.kinds import KIND_CHUNK
from bridge.engine.states import DocumentState, ItemTransport, move_document
from bridge.records.categories import validate_submission
from bridge.records.schema import validate
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")

Statement = tuple[str, str | None, str | None]  # an item's (status, reason, evidence)
Index = Mapping[str, tuple[int, bytes]]  # item id -> (index, leaf hash)
COMPARE_PAGE = 10_000  # stored items compared per page when a submission is retried
MAX_LISTED_PROBLEMS = 100  # bad items named in one answer (all are counted)


def queue_envelope(engine: Engine, peer: str, state: OutboundState, *, kind: str,
                   payload: bytes, sender: PrivateIdentity, now: int,
                   doc: tuple[int, bytes] | None = None,
                   first: int | None = None, n: int | None = None) -> OutboundState:
    """Seal ``payload`` as the envelope after ``state`` and put it in the outbox with its audit
    record, in the caller's transaction (so the chain can never fork locally). ``doc`` is the
    (row, digest) of the document a chunk carries. Returns the state after it."""
    # Nothing to do while it is signed: made here (handing it over would only add the hop).
    sealing = start_envelope(engine, peer, state, payload=payload, kind=kind, sender=sender,
                             now=now, beside=inline)
    return store_envelope(engine, peer, state, sealing.result(), doc=doc, first=first, n=n,
                          now=now)


def start_envelope(engine: Engine, peer: str, state: OutboundState, *, kind: str,
                   payload: bytes, sender: PrivateIdentity, now: int,
                   beside: Beside | None = None) -> Pending[Envelope]:
    """The envelope after ``state``, sealed now, the slow half of its signature made beside
    (``engine.beside`` unless told): the caller does other work meanwhile, then
    ``store_envelope``."""
    seq, prev = state.next()
    return envelope.start_seal(sender, engine.trust.peers[peer],
                               message_id=engine.random_bytes(16), seq=seq, prev=prev,
                               sent_at=now, kind=kind, payload=payload,
                               beside=beside or engine.beside)


def store_envelope(engine: Engine, peer: str, state: OutboundState, env: Envelope, *,
                   now: int, doc: tuple[int, bytes] | None = None, first: int | None = None,
                   n: int | None = None) -> OutboundState:
    """``env`` (made after ``state``) in the outbox with its audit record, in the caller's
    transaction. Returns the state after it."""
    engine.store.insert_outbox(peer=peer, seq=env.header.seq, msg_id=env.header.message_id,
                               digest=env.digest, envelope=env.data, kind=env.header.kind,
                               doc=doc[0] if doc else None, first=first, n=n, now=now)
    engine.audit(audit.ENVELOPE_QUEUED, peer, audit.envelope_body(
        env.header, codec.encode(env.header.to_map()), env.digest,
        doc=doc[1] if doc else None, first=first, n=n), now)
    return state.after(env.header.seq, env.digest)


def _sealed_chunk(stream: EntryStream, k: int, entries: Sequence[bytes],
                  sender: PrivateIdentity, recipient: PublicIdentity, message_id: bytes,
                  seq: int, prev: bytes, now: int) -> Envelope:
    """Chunk ``k`` of ``stream`` encoded and sealed (touches no store: made beside)."""
    return envelope.seal(sender, recipient, message_id=message_id, seq=seq, prev=prev,
                         sent_at=now, kind=KIND_CHUNK, payload=stream.chunk_payload(k, entries))


def check_peer_key(engine: Engine, peer: str) -> None:
    if engine.trust.peer_key_revoked(peer):
        raise InputError(f"{peer} revoked its key; nothing can be sealed to {peer} until "
                         "its new key is pinned (bridge peer add --replace, after checking "
                         "the fingerprint out of band)", field="to", code="peer_key_revoked")


def check_recipient(engine: Engine, peer: str) -> None:
    """``peer`` is pinned and its key in force: a document can be sealed to it."""
    if not engine.trust.is_pinned(peer):
        raise InputError(f"no pinned peer named {quoted(peer)}", field="to", code="unknown_peer")
    check_peer_key(engine, peer)


def check_queue(engine: Engine, peer: str) -> None:
    """Backpressure (``bridge.engine.backpressure``): raises ``QueueFull`` when what waits
    for ``peer`` is at its bound. Called before anything is signed or stored."""
    policy, store, now = engine.config.delivery, engine.store, engine.now()
    queue = Queue(envelopes=store.pending_count(peer),
                  bytes=engine.drains.queued_bytes.get(peer, now, store.pending_bytes),
                  max_envelopes=policy.max_queued_envelopes, max_bytes=policy.max_queued_bytes)
    refuse_if_full(queue, peer, engine.drains.rate(peer, now), policy.max_backoff)


class Outbound:
    """Submitting documents and acknowledging received items."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.chunk = chunks.chunk_size(engine.config.delivery.chunk_items)

    # ------------------------------------------------------------ documents

    def submit_document(self, body: object) -> dict[str, Any]:
        """Validate, sign, chunk, seal and commit a roster or manifest. Raises ``InputError``."""
        e = self.e
        e.guard.writable()
        validate("document", body)
        assert isinstance(body, dict)
        # Records of a known category (and manifest items that declare a kind) are checked
        # against their schema here too: an integrator may skip the importer, not the rules.
        validate_submission(body["type"], body.get("meta"), body["items"])
        peer = body["to"]
        check_recipient(e, peer)
        doc_id = body.get("id") or e.new_id(body["type"][0])
        existing = e.store.outbound_document(peer, doc_id)
        if existing is not None:
            # A retry after a lost answer must not fail (the caller cannot tell whether the
            # first call committed): the same id with the same content is the same document.
            if not self._same_submission(existing, body):
                raise InputError(f"document {doc_id!r} already exists with other content",
                                 field="id", code="duplicate_document")
            return {"id": doc_id, "type": existing.type, "to": peer, "items": existing.count,
                    "digest": existing.digest.hex(), "existing": True}
        check_queue(e, peer)
        ids: list[str] = []
        now = e.now()
        doc = documents.sign_document(
            e.trust.me, doc_type=body["type"], doc_id=doc_id, recipient=peer, created=now,
            meta=body.get("meta", {}), items=_consume(body["items"], ids),
            count=len(body["items"]), salt_key=e.random_bytes(32))
        lh = doc.tree.levels[0]
        with e.store.transaction():
            # The first envelope's signature is made beside the storing of the document and
            # its items, which it does not need (nor they it).
            state = e.store.outbound_state(peer)
            head, *rest = chunks.split(doc, self.chunk)
            sealing = start_envelope(e, peer, state, kind=KIND_CHUNK, payload=head.payload,
                                     sender=e.trust.me, now=now)
            rowid = self.e.record_document("out", doc.signed, peer, answers=None, now=now)
            queued = ItemTransport.QUEUED.value
            e.store.insert_items(
                (rowid, n, item_id, doc.leaves[n], lh[n], queued)
                for n, item_id in enumerate(ids))
            state = store_envelope(e, peer, state, sealing.result(), doc=(rowid, doc.digest),
                                   first=head.first, n=len(head.entries), now=now)
            self._enqueue(doc, peer, rowid, now, state=state, pieces=rest)
        e.notify()
        log.info("queued %s %s for %s: %d items", doc.header.type, doc_id, peer, len(ids))
        return {"id": doc_id, "type": doc.header.type, "to": peer, "items": len(ids),
                "digest": doc.digest.hex()}

    def _same_submission(self, row: DocumentRow, body: dict[str, Any]) -> bool:
        """Whether ``body`` submits exactly what the stored document ``row`` holds: type,
        meta and every item (id and record), compared in canonical form a page at a time."""
        header = documents.DocumentHeader.from_bytes(row.header)
        items: list[Any] = body["items"]
        if (row.type != body["type"] or row.count != len(items)
                or codec.encode(dict(header.meta)) != codec.encode(body.get("meta", {}))):
            return False
        for first in range(0, row.count, COMPARE_PAGE):
            for n, leaf in enumerate(self.e.store.leaves(row.rowid, first, COMPARE_PAGE),
                                     start=first):
                entry = documents.decode_declared_entry(leaf, n)
                raw = items[n]
                record = {k: v for k, v in raw.items() if k != "id"}
                if entry.item_id != raw["id"] or \
                        codec.encode(codec.canonical(record)) != codec.encode(entry.data):
                    return False
        return True

    def _enqueue(self, doc: SignedDocument, peer: str, rowid: int, now: int, *,
                 state: OutboundState | None = None,
                 pieces: Sequence[chunks.Chunk] | None = None) -> None:
        """Seal each chunk with the next sequence number and chain hash (``pieces``: the
        chunks not queued yet, after ``state``)."""
        state = self.e.store.outbound_state(peer) if state is None else state
        for chunk in pieces if pieces is not None else chunks.split(doc, self.chunk):
            state = queue_envelope(self.e, peer, state, kind=KIND_CHUNK, payload=chunk.payload,
                                   sender=self.e.trust.me, now=now, doc=(rowid, doc.digest),
                                   first=chunk.first, n=len(chunk.entries))

    def seal_staged(self, stream: EntryStream, stage: int, peer: str, doc: tuple[int, bytes],
                    now: int, publish: Callable[[int, int], None]) -> None:
        """Seal a streamed document's chunks, its entries read back from ``stage`` a chunk at
        a time, and ``publish(first, n)`` each chunk's entries as its items meanwhile (in the
        caller's transaction)."""
        self.seal_entries(stream, lambda first, n: self.e.store.staged_leaves(stage, first, n),
                          peer, doc, now, beside=publish)

    def seal_entries(self, stream: EntryStream, read: Callable[[int, int], list[bytes]],
                     peer: str, doc: tuple[int, bytes], now: int,
                     beside: Callable[[int, int], None] = lambda first, n: None) -> None:
        """Seal a streamed document's chunks, entries ``[first, first + n)`` read back by
        ``read(first, n)`` a chunk at a time (in the caller's transaction).

        Each chunk is encoded and sealed on the engine's ``beside`` (the daemon's signing
        thread) while ``beside(first, n)`` does the store's work on it here: SQLite lets go
        of the interpreter while it writes, and the library while it signs and encrypts, so
        the two overlap instead of taking turns (for 100,000 entries, about 0.1 s of the
        commit's 0.6 s). The chunks are still sealed and queued one after another, each after
        the one before it, with the same sequence numbers, chain hashes and message ids
        (drawn here, in the same order). One chunk is held at a time."""
        state = self.e.store.outbound_state(peer)
        size = stream.chunk
        recipient = self.e.trust.peers[peer]
        for k in range(stream.chunks):
            entries = read(k * size, size)
            seq, prev = state.next()
            sealing = self.e.beside(functools.partial(
                _sealed_chunk, stream, k, entries, self.e.trust.me, recipient,
                self.e.random_bytes(16), seq, prev, now))
            beside(k * size, len(entries))
            state = store_envelope(self.e, peer, state, sealing.result(), doc=doc,
                                   first=k * size, n=len(entries), now=now)

    # ------------------------------------------------------------ acknowledging received items

    def acknowledge(self, doc_id: str, body: object) -> dict[str, Any]:
        e = self.e
        e.guard.writable()
        validate("ack", body)
        assert isinstance(body, dict)
        row = self.acknowledgeable(doc_id)
        e.guard.document_statuses_hold(row)  # the lifecycle: against the signed history
        if "all" in body:  # a page at a time, never the whole document in memory
            check_queue(e, row.peer)
            return acknowledge_all(self, row, body)
        index = e.item_index(row.rowid)
        declared_status, undeclared_status = e.store.current_statuses(row.rowid)
        # Restating exactly what an item already says states nothing: a retry after a lost
        # answer (or a sheet sent twice) records nothing new and signs no second answer.
        current = e.store.current_statements(row.rowid)
        items = ack_listed(doc_id, body["items"], index, declared_status, undeclared_status,
                           current)
        changed: dict[str, int] = {}
        for i in items:
            key = current[i.id][0] if i.id in current else "unacknowledged"
            changed[key] = changed.get(key, 0) + 1
        if not items:
            return {"ack_id": None, "items": 0, "changed": {}}
        check_queue(e, row.peer)
        # Acknowledgements of one document carry strictly increasing times, so that their
        # order (and so each item's final status) is unambiguous in a receipt.
        last = e.store.last_ack_created(row.rowid)
        now = max(e.now(), (last or 0) + 1)
        ack = documents.sign_ack(
            e.trust.me, answers=e.guard.stored_header(row), ack_id=e.new_id("ack"),
            created=now, items=items, declared_leaf_hashes={k: v[1] for k, v in index.items()},
            salt_key=e.random_bytes(32), undeclared_known=undeclared_status)
        with e.store.transaction():
            ack_row = e.record_document("out", ack.signed, row.peer, answers=row.rowid, now=now)
            self._record_ack_entries(ack_row, row.rowid, ack, items, index, now)
            if e.store.acknowledged_count(row.rowid) == row.count:
                move_document(e.store, row, DocumentState.ACKNOWLEDGED, now)
            self._enqueue(ack, row.peer, ack_row, now)
        e.notify()
        return {"ack_id": ack.header.id, "items": len(items), "changed": changed}

    def acknowledgeable(self, doc_id: str) -> DocumentRow:
        """The received document ``doc_id``, complete, whose sender's key is in force."""
        e = self.e
        inbound = e.store.documents_by_id(doc_id, "in")  # read once, for both questions
        if not inbound and e.store.documents_by_id(doc_id, "out"):
            # Say what is wrong ("not found" would send the caller looking for a typo).
            raise InputError(f"{doc_id} is a document this bridge sent; only received "
                             "documents are acknowledged", field="id", code="not_inbound")
        row = only_document(e, doc_id, inbound)
        check_peer_key(e, row.peer)
        if row.type == "ack":
            raise InputError("acknowledgements are not acknowledged", field="id",
                             code="not_inbound")
        if row.state not in (DocumentState.RECEIVED, DocumentState.ACKNOWLEDGED):
            raise InputError(f"document {doc_id} has not been received completely yet",
                             field="id", code="not_ready")
        return row

    def _record_ack_entries(self, ack_row: int, doc_row: int, ack: SignedDocument,
                            items: Sequence[AckItem], index: Index, at: int) -> None:
        """History rows and latest statuses for our own acknowledgement (entry n is item n)."""
        store = self.e.store
        store.insert_ack_entries(
            (ack_row, n, doc_row, index[e.id][0] if e.id in index else None,
             e.id, e.status, e.reason, e.evidence, ack.leaves[n], at)
            for n, e in enumerate(items))
        uniform = len({(e.status, e.reason, e.evidence) for e in items}) == 1
        if uniform and len(items) == len(index) and all(e.id in index for e in items):
            # One status for every item ("all"): one set-based statement instead of N.
            e = items[0]
            store.set_all_statuses(doc_row, e.status, e.reason, e.evidence, at)
        else:
            store.update_statuses(
                (e.status, e.reason, e.evidence, at, doc_row, index[e.id][0])
                for e in items if e.id in index)


def _consume(raw_items: list[Any], ids: list[str]) -> Iterator[Item]:
    """Each record is the submitted object minus its id. Records are handed over one by one
    and dropped once encoded, so a 100,000-item submission is never held twice."""
    for n in range(len(raw_items)):
        raw, raw_items[n] = raw_items[n], None
        item = Item(id=raw.pop("id"), data=raw)
        ids.append(item.id)
        yield item


def ack_listed(doc_id: str, raw_items: Sequence[dict[str, Any]], index: Index,
               declared_status: Mapping[str, str], undeclared_status: Mapping[str, str],
               current: Mapping[str, Statement]) -> list[AckItem]:
    """The listed items' new statements, each checked against the lifecycle; every bad item
    is named in one ``InputError``, not only the first."""
    items = []
    problems: list[InputError] = []
    for n, raw in enumerate(raw_items):
        item = AckItem(id=raw["id"], status=raw["status"], reason=raw.get("reason"),
                       evidence=raw.get("evidence"))
        if current.get(item.id) == (item.status, item.reason, item.evidence):
            continue
        declared = item.id in index
        try:
            if not declared and item.status != lifecycle.UNDECLARED \
                    and item.id not in undeclared_status:
                raise InputError(f"item {quoted(item.id)} is not in document {doc_id}",
                                 field=f"items[{n}].id", code="unknown_item")
            previous = (declared_status if declared else undeclared_status).get(item.id)
            lifecycle.check(previous, item.status, declared=declared, item_id=item.id,
                            field=f"items[{n}].status")
        except InputError as err:
            problems.append(err)
            continue
        items.append(item)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more items)" if len(problems) > 1 else ""
        raise InputError(first.detail + more, field=first.field, code=first.code,
                         problems=tuple((p.field, p.detail)
                                        for p in problems[:MAX_LISTED_PROBLEMS])
                         if len(problems) > 1 else ())
    return items
