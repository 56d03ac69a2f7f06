"""The engine's ports: what it needs from the world, as protocols.

- ``Store``: the durable record (documents, items, the outbox and inbox, refusals, events,
  the audit log). ``bridge.store.sqlite.Store`` is the one implementation today; the engine
  calls nothing else of it, so another (PostgreSQL) can stand beside it.
- ``Courier``: carries a batch of our envelopes to a peer and hands back the peer's answers,
  now or later, each naming the envelope it answers by sequence number and hash; several may
  be in flight. ``bridge.transports.http.courier`` is the direct HTTP one; a relay or a file
  carrier comes next.
- ``Clock``: the wall clock in milliseconds, injected so tests can drive it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.core import audit
from bridge.core.errors import UsageError
from bridge.core.link import InboundState, OutboundState
from bridge.engine.store_check import StoredRows
from bridge.reports.model import AttentionItem, DocumentCount, ItemCount, ReasonCount
from bridge.store.sqlite.audit_tree import CheckpointRow, CosignatureRow
from bridge.store.sqlite.store import DocumentRow, OutboxRow

# How an adapter runs an engine call: on the daemon's one database thread, awaited from the
# event loop (the engine is synchronous; its operations never interleave).
RunInDb = Callable[..., Awaitable[Any]]


class Clock(Protocol):
    """Wall-clock time in milliseconds since the epoch (UTC)."""

    def __call__(self) -> int: ...


def system_clock() -> int:
    """The wall clock, in milliseconds: the one place the engine reads the time of day."""
    return int(time.time() * 1000)


class Store(Protocol):
    @property
    def in_transaction(self) -> bool:
        """Is a transaction open (an alarm raised inside one is saved once it has rolled
        back)?"""

    def transaction(self) -> AbstractContextManager[object]:
        """One transaction: committed when the block ends, rolled back if it raises."""

    def insert_document(self, *, id: str, direction: str, peer: str, type: str, digest: bytes,
                        header: bytes, sig: bytes, count: int, answers: int | None,
                        meta: dict[str, Any], created: int, state: str, now: int) -> int: ...

    def document_exists(self, direction: str, peer: str, doc_id: str) -> bool: ...

    def outbound_document(self, peer: str, doc_id: str) -> DocumentRow | None: ...

    def document_by_digest(self, digest: bytes) -> DocumentRow | None: ...

    def document_by_rowid(self, rowid: int) -> DocumentRow | None: ...

    def documents_by_id(self, doc_id: str, direction: str | None = None) -> list[DocumentRow]: ...

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       include_acks: bool = False, limit: int = 1000,
                       before: int | None = None) -> list[DocumentRow]: ...

    def acks_of(self, doc_rowid: int) -> list[DocumentRow]: ...

    def last_ack_created(self, doc_rowid: int, exclude: int | None = None) -> int | None: ...

    def documents_with_meta_key(self, key: str) -> list[DocumentRow]: ...

    def has_event(self, type: str, doc_rowid: int) -> bool: ...

    def set_document_state(self, rowid: int, state: str, now: int) -> None: ...

    def add_stored(self, rowid: int, n: int) -> int: ...

    def insert_items(self, rows: Iterable[tuple[int, int, str, bytes, bytes, str]]) -> None: ...

    def insert_items_with_fields(self, rows: Iterable[tuple[Any, ...]]) -> None: ...

    def set_transport(self, doc: int, first: int, n: int, transport: str) -> None: ...

    def item_index(self, doc: int) -> dict[str, tuple[int, bytes]]: ...

    def item_index_of(self, doc: int, item_ids: list[str]) -> dict[str, tuple[int, bytes]]: ...

    def leaves(self, doc: int, first: int = 0, n: int | None = None) -> list[bytes]: ...

    def update_statuses(self, rows: Iterable[tuple[str, str | None, str | None, int, int, int]]
                        ) -> None: ...

    def set_all_statuses(self, doc: int, status: str, reason: str | None,
                         evidence: str | None, at: int) -> None: ...

    def current_statuses(self, doc: int) -> tuple[dict[str, str], dict[str, str]]: ...

    def current_statements(self, doc: int) -> dict[str, tuple[str, str | None, str | None]]: ...

    def undeclared_statuses(self, doc: int) -> dict[str, str]: ...

    def statuses_at(self, doc: int, indexes: list[int]) -> dict[int, str]: ...

    def status_counts(self, doc: int) -> dict[str, int]: ...

    def item_counts(self, doc: int) -> tuple[dict[str, int], int]: ...

    def acknowledged_count(self, doc: int) -> int: ...

    def items_page(self, doc: int, *, status: str | None, after: int, limit: int
                   ) -> list[tuple[Any, ...]]: ...

    def item_row(self, doc: int, item_id: str) -> tuple[Any, ...] | None: ...

    def check_rows(self) -> StoredRows: ...

    def status_mismatch(self, doc: int, first: int = 0, last: int = 1 << 62) -> str | None: ...

    def status_mismatch_at(self, doc: int, indexes: list[int]) -> str | None: ...

    def status_mismatch_any(self, peer: str | None) -> tuple[int, str] | None: ...

    def data_version(self) -> int: ...

    def reconcile_items(self, peer: str | None) -> list[ItemCount]: ...

    def reconcile_documents(self, peer: str | None) -> list[DocumentCount]: ...

    def reason_counts(self, peer: str | None, statuses: Sequence[str],
                      limit: int = 1000) -> list[ReasonCount]: ...

    def attention_items(self, peer: str | None, statuses: Sequence[str],
                        limit: int) -> tuple[list[AttentionItem], int]: ...

    def audit_head(self) -> tuple[int, bytes | None]: ...

    def insert_ack_entries(self, rows: Iterable[tuple[Any, ...]]) -> None: ...

    def item_history(self, doc: int, item_id: str) -> list[tuple[Any, ...]]: ...

    def ack_leaves(self, ack: int) -> list[bytes]: ...

    def iter_ack_leaves(self, ack: int) -> Iterator[bytes]: ...

    def item_ack_entries(self, doc: int, item_id: str) -> dict[int, tuple[int, bytes]]: ...

    def iter_leaf_hashes(self, doc: int) -> Iterator[bytes]: ...

    def outbound_state(self, peer: str) -> OutboundState: ...

    def insert_outbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes,
                      envelope: bytes, kind: str, doc: int | None, first: int | None,
                      n: int | None, now: int) -> None: ...

    def next_pending(self, peer: str) -> OutboxRow | None: ...

    def pending_rows(self, peer: str, after: int, limit: int) -> list[OutboxRow]: ...

    def pending_row(self, peer: str, seq: int) -> OutboxRow | None: ...

    def outbox_digest(self, peer: str, seq: int) -> bytes | None: ...

    def count_attempt(self, peer: str, seq: int) -> None: ...

    def finish_outbox(self, peer: str, seq: int, state: str, receipt: bytes, now: int) -> None: ...

    def rewind_outbox(self, peer: str, from_seq: int) -> int: ...

    def envelope_bytes(self, peer: str, seq: int) -> bytes | None: ...

    def open_stage(self) -> int: ...

    def stage_items(self, stage: int, rows: Iterable[tuple[int, str, bytes, bytes, str | None,
                                                          str | None]]) -> None: ...

    def staged_leaves(self, stage: int, first: int, n: int) -> list[bytes]: ...

    def publish_stage(self, stage: int, doc: int, transport: str) -> None: ...

    def stage_acks(self, stage: int, rows: Iterable[tuple[int, str, bytes, int]]) -> None: ...

    def publish_ack_stage(self, stage: int, *, ack: int, doc: int, status: str,
                          reason: str | None, at: int, every_item: bool) -> None: ...

    def drop_stage(self, stage: int) -> None: ...

    def ack_all_counts(self, doc: int, including: list[str], status: str,
                       reason: str | None) -> dict[str, int]: ...

    def ack_all_page(self, doc: int, including: list[str], status: str, reason: str | None,
                     after: int, limit: int) -> list[tuple[int, str, bytes, str | None]]: ...

    def pending_count(self, peer: str | None = None) -> int: ...

    def queue_of(self, peer: str) -> tuple[int, int | None]: ...

    def pending_for_doc(self, doc: int) -> int: ...

    def inbound_state(self, peer: str) -> InboundState: ...

    def inbox_entry(self, peer: str, seq: int) -> tuple[bytes, bytes] | None: ...

    def insert_inbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes, header: bytes,
                     kind: str, result: str, receipt: bytes, now: int) -> None: ...

    def record_refusal(self, *, peer: str | None, seq: int | None, digest: bytes | None,
                       reason: str, detail: str, alarm: bool, now: int, count: int = 1,
                       source: str | None = None) -> bool: ...

    def add_event(self, type: str, data: dict[str, Any], now: int) -> int: ...

    def event_data(self, type: str) -> list[dict[str, Any]]: ...

    def events_after(self, last_id: int, limit: int = 500) -> list[tuple[int, str, str]]: ...

    def last_event_id(self) -> int: ...

    def append_audit(self, *, kind: str, peer: str | None, body: dict[str, Any],
                     now: int) -> audit.AuditRecord: ...

    def audit_bodies(self, kind: str) -> list[tuple[str | None, bytes]]: ...

    # The audit log's tree, its checkpoints and their cosignatures (PROTOCOL.md §13).
    def audit_tree_size(self) -> int: ...

    def audit_root(self, size: int) -> bytes: ...

    def audit_inclusion(self, seq: int, size: int) -> list[bytes]: ...

    def audit_consistency(self, old: int, new: int) -> list[bytes]: ...

    def add_checkpoint(self, *, size: int, root: bytes, note: bytes, now: int) -> None: ...

    def add_cosignature(self, *, witness: str, size: int, timestamp: int,
                        line: bytes) -> None: ...

    def cosignatures(self, witness: str | None = None) -> list[CosignatureRow]: ...

    def checkpoint_at(self, size: int) -> CheckpointRow | None: ...

    def witnessed_evidence(self, digests: set[bytes]) -> list[dict[str, object]]: ...

    def counters(self) -> dict[str, int]: ...


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One envelope of ours for a courier to carry, named by its sequence number and hash."""

    peer: str
    seq: int
    digest: bytes
    data: bytes

    @classmethod
    def of(cls, row: OutboxRow) -> Outgoing:
        return cls(peer=row.peer, seq=row.seq, digest=row.digest, data=row.envelope)


class Carried(enum.StrEnum):
    """How a courier's try at carrying one envelope ended."""

    ANSWERED = "answered"  # the peer answered; the body is what it says (checked by the engine)
    UNREACHABLE = "unreachable"  # nothing came back: no connection, a timeout
    ANSWER_TOO_LARGE = "answer_too_large"  # an answer longer than a transport answer can be
    NOT_PINNED = "not_pinned"  # the endpoint is not the one pinned: nothing was sent


@dataclass(frozen=True, kw_only=True)
class Arrival:
    """What a courier hands back about one envelope: the peer's answer (``body``) or why there
    is none (``detail``). ``note`` says how the answer came (e.g. "HTTP 409"), for the log:
    the engine decides on the signed bytes alone."""

    seq: int
    digest: bytes
    result: Carried
    body: bytes = b""
    note: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.result, Carried):
            raise UsageError("an arrival's result is a Carried")


class Courier(Protocol):
    """Carries envelopes to one peer. ``send`` hands over a batch; each envelope's
    ``Arrival`` comes back from ``receive``, now or later, in any order, and is matched to its
    outbox row by sequence number and hash (``bridge.engine.delivery.InFlight``)."""

    async def send(self, batch: Sequence[Outgoing]) -> None: ...

    async def receive(self) -> Arrival: ...

    async def close(self) -> None:
        """Let go of connections; the next ``send`` opens them again."""
