"""The exchange: what a bridge does with documents, envelopes and acknowledgements.

A thin facade over the engine's parts, each in its own module with one job:

- ``trust``: what is trusted (own keys, pinned peers, key rules, the keyring), one object;
- ``keys``: our own key's rotation and revocation, peers' key statements, the key files;
- ``outbound``: documents submitted and items acknowledged, signed, sealed and queued;
- ``streaming``: a document submitted as a stream of items, committed only whole;
- ``inbound``: an envelope received, authenticated, classified and applied (``intake``);
- ``delivery``: the outbox from the sender's side and the peer's answers;
- ``queries``: documents, items, receipts, deadlines and reconciliation for the local API;
- ``health``: the store's faults and the alarm when it is not what was signed.

Synchronous, and called from the daemon's one database thread, so each operation is one
transaction against the store and operations never interleave. The adapters (the peer
endpoint, the courier, the local API) only translate between their wire and these methods.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bridge.core.beside import Beside, inline
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.documents import SignedDocument
from bridge.core.errors import DecodeError, PeerError
from bridge.engine.ack_stream import AckStreaming, StreamedAck
from bridge.engine.carry import Carry
from bridge.engine.check_pass import CheckPass
from bridge.engine.chunk_ahead import Ahead
from bridge.engine.context import Engine
from bridge.engine.delivery import Delivery
from bridge.engine.health import StoreGuard
from bridge.engine.inbound import UNAUTHENTICATED_SOURCE, Inbound, Parsed, decode_envelope
from bridge.engine.keys import Keys
from bridge.engine.limits import RefusalGate
from bridge.engine.metrics import Metrics
from bridge.engine.outbound import Outbound
from bridge.engine.outcomes import Answer, DeliveryOutcome, Outcome
from bridge.engine.ports import Clock, Store, system_clock
from bridge.engine.queries import Queries
from bridge.engine.receipt_stream import DocumentReceipt
from bridge.engine.store_check import StoreFault
from bridge.engine.stream_batch import CheckedBatch
from bridge.engine.streaming import Streamed, Streaming
from bridge.engine.trust import TrustState
from bridge.engine.witnessing import Witnessing
from bridge.home.config import Config
from bridge.home.keystore import KeyStore
from bridge.store.sqlite.store import DocumentRow, OutboxRow


class Exchange:
    def __init__(self, *, store: Store, identity: PrivateIdentity,
                 peers: Mapping[str, PublicIdentity], config: Config,
                 clock: Clock | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 notify: Callable[[], None] = lambda: None,
                 metrics: Metrics | None = None,
                 keystore: KeyStore | None = None,
                 passphrase: bytes | None = None,
                 retired: Sequence[PrivateIdentity] = (),
                 witnesses: Mapping[str, PublicIdentity] | None = None,
                 beside: Beside = inline) -> None:
        now = clock or system_clock
        metrics = metrics or Metrics()
        trust = TrustState(me=identity, retired=retired, peers=peers,
                           peer_keys=(lambda name, ident: keystore.peer_keys(name))
                           if keystore is not None else None)
        self.engine = Engine(store=store, trust=trust, config=config, now=now,
                             random_bytes=random_bytes, notify=notify, metrics=metrics,
                             guard=StoreGuard(store=store, metrics=metrics, now=now,
                                              notify=notify),
                             witnesses=dict(witnesses or {}), beside=beside)
        self.store = store
        self.config = config
        self.metrics = metrics
        self.keystore = keystore
        self.keys = Keys(self.engine, keystore=keystore, passphrase=passphrase)
        # Which refusals get a row: a flood must not grow the store without bound (limits.py).
        self.refusal_gate = RefusalGate(per_minute=config.limits.refusal_records_per_minute,
                                        metrics=metrics)
        self.keys.finish_changes()
        self.outbound = Outbound(self.engine)
        self.streaming = Streaming(self.engine, self.outbound)
        self.ack_streaming = AckStreaming(self.outbound)
        self.inbound = Inbound(self.engine, self.keys, self.refusal_gate)
        self.delivery = Delivery(self.engine)
        self.carry = Carry(self.engine, self.delivery)
        self.queries = Queries(self.engine)
        self.witnessing = Witnessing(self.engine)
        self.keys.record_keys()

    # ============================================================ state, as before

    @property
    def trust(self) -> TrustState:
        return self.engine.trust

    @property
    def me(self) -> PrivateIdentity:
        return self.engine.trust.me

    @property
    def own(self) -> list[PrivateIdentity]:
        return self.engine.trust.own

    @property
    def peers(self) -> dict[str, PublicIdentity]:
        return self.engine.trust.peers

    @property
    def keyring(self) -> Keyring:
        return self.engine.trust.keyring

    @property
    def store_faults(self) -> list[StoreFault]:
        return self.engine.guard.faults

    @property
    def now(self) -> Clock:
        return self.engine.now

    @property
    def notify(self) -> Callable[[], None]:
        return self.engine.notify

    # ============================================================ keys

    def rotate_key(self, body: object = None) -> dict[str, Any]:
        return self.keys.rotate_key(body)

    def revoke_key(self, body: object) -> dict[str, Any]:
        return self.keys.revoke_key(body)

    def reload_peers(self, peers: Mapping[str, PublicIdentity],
                     config: Config | None = None) -> None:
        """The pinned peers again (``bridge peer add`` or ``peer remove``, then a reload): what
        is trusted, and with ``config`` the peers' addresses that ``/v1/peers`` reports."""
        if config is not None:
            self.config = self.engine.config = config
        self.keys.reload_peers(peers)

    # ============================================================ outbound

    def submit_document(self, body: object) -> dict[str, Any]:
        return self.outbound.submit_document(body)

    def begin_stream(self, header: object) -> Streamed:
        return self.streaming.begin(header)

    def stream_items(self, streamed: Streamed, raw_items: list[Any]) -> None:
        self.streaming.add(streamed, raw_items)

    def stage_stream_items(self, streamed: Streamed, batch: CheckedBatch) -> None:
        self.streaming.stage(streamed, batch)

    def finish_stream(self, streamed: Streamed) -> dict[str, Any]:
        return self.streaming.finish(streamed)

    def abort_stream(self, streamed: Streamed) -> None:
        self.streaming.abort(streamed)

    def acknowledge(self, doc_id: str, body: object) -> dict[str, Any]:
        return self.outbound.acknowledge(doc_id, body)

    def begin_ack_stream(self, doc_id: str, header: object) -> StreamedAck:
        return self.ack_streaming.begin(doc_id, header)

    def ack_stream_items(self, streamed: StreamedAck, raw_items: list[Any]) -> None:
        self.ack_streaming.add(streamed, raw_items)

    def finish_ack_stream(self, streamed: StreamedAck) -> dict[str, Any]:
        return self.ack_streaming.finish(streamed)

    def abort_ack_stream(self, streamed: StreamedAck) -> None:
        self.ack_streaming.abort(streamed)

    # ============================================================ inbound

    def receive(self, data: bytes) -> Answer:
        """One envelope a peer sent, whatever carried it: an ``Answer`` (an ``Outcome`` and
        the signed transport answer to hand back). Never raises for anything the peer sent."""
        return self.inbound.receive(data)

    def receive_envelope(self, data: bytes, parsed: Parsed | PeerError | None = None,
                         ahead: Ahead | None = None) -> Answer:
        """As ``receive``; ``parsed`` is ``decode_envelope(data)``, done off the database
        thread by the peer endpoint, and ``ahead`` a chunk's pure work done beside it
        (``open_ahead``, ``bridge.engine.chunk_ahead``)."""
        return self.inbound.receive(data, parsed, ahead)

    def open_ahead(self, data: bytes, parsed: Parsed | PeerError) -> bytes | None:
        """``Inbound.open_ahead``: any thread, never the database thread's work."""
        return self.inbound.open_ahead(data, parsed)

    def record_limit_refusal(self, *, reason: str, detail: str, count: int = 1,
                             source: str = UNAUTHENTICATED_SOURCE) -> None:
        self.inbound.record_limit_refusal(reason=reason, detail=detail, count=count,
                                          source=source)

    # ============================================================ delivery

    def next_pending(self, peer: str) -> OutboxRow | None:
        return self.delivery.next_pending(peer)

    def pending_rows(self, peer: str, after: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` pending envelopes to ``peer`` after seq ``after``, in order."""
        return self.store.pending_rows(peer, after, limit)

    def count_attempt(self, row: OutboxRow) -> None:
        self.delivery.count_attempt(row)

    def answered(self, row: OutboxRow, body: bytes, note: str = "the answer"
                 ) -> DeliveryOutcome:
        """The peer's answer ``body`` to ``row``; ``note`` says how it came, for the log."""
        return self.delivery.answered(row, body, note)

    def tried(self, row: OutboxRow, body: bytes, note: str,
              in_flight: frozenset[int] = frozenset()) -> DeliveryOutcome:
        """One attempt at ``row`` ended with the answer ``body``: the attempt counted and the
        answer acted on, in one transaction (``Delivery.answered``)."""
        return self.delivery.answered(row, body, note, count=True, in_flight=in_flight)

    def delivery_answer(self, row: OutboxRow, status: int, body: bytes) -> DeliveryOutcome:
        """As ``answered``, for a caller holding an HTTP answer: the status only names how
        the answer came in a failure's detail; it decides nothing."""
        return self.delivery.answered(row, body, f"HTTP {status}")

    def peer_event(self, kind: str, peer: str, detail: str, reason: str | None = None) -> None:
        self.delivery.peer_event(kind, peer, detail, reason)

    # ============================================================ queries

    def find_document(self, doc_id: str, direction: str | None = None) -> DocumentRow:
        return self.queries.find_document(doc_id, direction)

    def summary(self, row: DocumentRow) -> dict[str, Any]:
        return self.queries.summary(row)

    def check_deadlines(self) -> int:
        return self.queries.check_deadlines()

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       limit: int, after: str | None = None) -> list[dict[str, Any]]:
        return self.queries.list_documents(direction=direction, type=type, peer=peer,
                                           limit=limit, after=after)

    def documents_page(self, *, direction: str | None, type: str | None, peer: str | None,
                       limit: int, after: str | None = None) -> dict[str, Any]:
        return self.queries.documents_page(direction=direction, type=type, peer=peer,
                                           limit=limit, after=after)

    def document_detail(self, doc_id: str, direction: str | None) -> dict[str, Any]:
        return self.queries.document_detail(doc_id, direction)

    def items(self, doc_id: str, *, direction: str | None, status: str | None,
              after: str | None, limit: int) -> dict[str, Any]:
        return self.queries.items(doc_id, direction=direction, status=status, after=after,
                                  limit=limit)

    def item(self, doc_id: str, item_id: str, direction: str | None) -> dict[str, Any]:
        return self.queries.item(doc_id, item_id, direction)

    def document_bundle(self, doc_id: str, direction: str | None
                        ) -> tuple[SignedDocument, list[SignedDocument]]:
        return self.queries.document_bundle(doc_id, direction)

    def receipt(self, doc_id: str, item_id: str | None, direction: str | None) -> bytes:
        return self.queries.receipt(doc_id, item_id, direction)

    def document_receipt(self, doc_id: str, direction: str | None) -> DocumentReceipt:
        """The whole-document receipt, to be made a piece at a time (the same bytes as
        ``receipt`` without an item, in bounded memory)."""
        return DocumentReceipt(self.engine, doc_id, direction)

    def reconcile(self, *, peer: str | None = None, quota: int | None = None
                  ) -> dict[str, Any]:
        return self.queries.reconcile(peer=peer, quota=quota)

    # ============================================================ health

    def health(self) -> dict[str, Any]:
        me = self.engine.trust.me
        out = self.engine.guard.health(party=me.party, fingerprint=me.public.fingerprint,
                                       peers=list(self.engine.trust.peers))
        if self.config.witnesses:
            out["witnesses"] = self.witnessing.status(list(self.config.witnesses))
            out["peer_logs"] = self.witnessing.peer_checkpoints.status()
            for name, seen in out["witnesses"].items():  # how each is reached (§13.8)
                seen["via"] = self.config.witnesses[name].via
        return out

    def rolled_back(self) -> None:
        """Operations that ran but were not committed (the daemon's group commit lost its
        COMMIT): the item indexes cached since may name rows that are not on disk."""
        self.engine._index_cache.clear()

    def check_store(self) -> list[StoreFault]:
        return self.engine.guard.check_store(self.engine.trust.own)

    def store_fault(self, fault: StoreFault) -> None:
        self.engine.guard.store_fault(fault)

    # The whole store check beside the work (bridge/engine/check_pass.py), driven by the
    # daemon: its reads on a connection of their own, its findings and its end here.
    def check_pass_due(self) -> bool:
        return self.engine.guard.pass_due

    def check_pass_begun(self) -> None:
        self.engine.guard.pass_begun()

    def found_store_faults(self, faults: list[StoreFault]) -> None:
        for fault in faults:
            self.engine.guard.store_fault(fault)

    def check_pass_done(self, work: CheckPass) -> None:
        self.engine.guard.pass_done(work, self.engine.trust.own)


__all__ = ["Answer", "DecodeError", "DeliveryOutcome", "Exchange", "Outcome", "decode_envelope"]
