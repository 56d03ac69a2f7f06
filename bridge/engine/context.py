"""What every part of the engine shares: the store, the trust state, the clock, randomness,
the change signal, metrics, the store guard and the item-index cache.

One object handed to each part (``keys``, ``outbound``, ``inbound``, ``delivery``, ``queries``,
``health``), so that no part holds another's state: each reads and writes only through these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.core import audit
from bridge.core.beside import Beside, inline
from bridge.core.crypto.identity import PublicIdentity
from bridge.core.documents import SignedHeader
from bridge.engine.backpressure import Drains
from bridge.engine.health import StoreGuard
from bridge.engine.metrics import Metrics
from bridge.engine.ports import Clock, Store
from bridge.engine.states import new_state
from bridge.engine.trust import TrustState
from bridge.home.config import Config

INDEX_CACHE_DOCUMENTS = 4
"""Documents whose item index is kept in memory: acknowledgements of one document arrive in
many chunks, and a few documents are acknowledged at a time."""


@dataclass(kw_only=True)
class Engine:
    store: Store
    trust: TrustState
    config: Config
    now: Clock
    random_bytes: Callable[[int], bytes]
    notify: Callable[[], None]
    metrics: Metrics
    guard: StoreGuard
    # The pinned witnesses (PROTOCOL.md §13.4), whose cosignatures on a peer's checkpoints
    # are checked (§13.7).
    witnesses: dict[str, PublicIdentity] = field(default_factory=dict)
    # item id -> (index, leaf hash) of our own documents. Immutable once stored, so it can
    # be cached.
    _index_cache: dict[int, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    # How fast each link drained lately: the Retry-After of a refusal (backpressure.py).
    drains: Drains = field(default_factory=Drains)
    # Where a signature is made while the step that needs it goes on (ports.Beside).
    beside: Beside = inline

    def audit(self, kind: str, peer: str | None, body: dict[str, Any], now: int) -> None:
        """Append one audit record (PROTOCOL.md §11) in the caller's transaction: the log
        commits or rolls back with the change it records. One per document, envelope,
        receipt or refusal, never one per item."""
        self.store.append_audit(kind=kind, peer=peer, body=body, now=now)

    def record_document(self, direction: str, signed: SignedHeader, peer: str, *,
                        answers: int | None, now: int) -> int:
        """A signed document (or acknowledgement) stored in its first state, with its audit
        record, in the caller's transaction: the one way either side keeps a document."""
        h = signed.header
        rowid = self.store.insert_document(
            id=h.id, direction=direction, peer=peer, type=h.type, digest=signed.digest,
            header=signed.data, sig=signed.signature, count=h.count, answers=answers,
            meta=dict(h.meta), created=h.created, state=new_state(direction).value, now=now)
        kind, body = audit.document_body(direction, signed)
        self.audit(kind, peer, body, now)
        return rowid

    def item_index(self, doc: int) -> dict[str, tuple[int, bytes]]:
        index = self._index_cache.get(doc)
        if index is None:
            if len(self._index_cache) >= INDEX_CACHE_DOCUMENTS:
                self._index_cache.pop(next(iter(self._index_cache)))
            index = self._index_cache[doc] = self.store.item_index(doc)
        return index

    def new_id(self, kind: str) -> str:
        """A document id of ours: party, kind, time and randomness (never reused)."""
        return f"{self.trust.me.party}-{kind}-{self.now():x}-{self.random_bytes(4).hex()}"
