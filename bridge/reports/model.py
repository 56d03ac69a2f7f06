"""The reconciliation report as frozen values: the store's grouped rows that go in, and the
report that comes out (see ``bridge.reports.rules`` for the words used).

- An **item** is counted once per side, peer and category, by its id, or for a manifest item
  that names its ``roster_record``, by that record's id: a person listed on a roster and then
  put into a manifest (or re-manifested after NOT_RECEIVED) is one person. Its status is that
  of its latest manifest entry, else of its latest roster entry.
- The per-manifest table counts that manifest's own entries (no merging across documents).

Pure: no I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- input rows (from the store)

ATTENTION_LISTED = 200  # ids listed as disputed or outstanding; the rest are counted


@dataclass(frozen=True, kw_only=True)
class ItemCount:
    """``count`` distinct items of one direction, peer and category sharing these facts."""

    direction: str  # "out" | "in"
    peer: str
    category: str | None
    listed: bool  # on a roster
    manifested: bool  # in a manifest
    reached: bool  # its (latest) document reached the other bridge
    status: str | None  # latest status of its latest manifest entry, else roster entry
    count: int


@dataclass(frozen=True, kw_only=True)
class DocumentCount:
    """One roster or manifest: its entries counted by latest status (None: not yet
    acknowledged), and the items acknowledged although it never declared them."""

    direction: str
    peer: str
    id: str
    type: str  # "roster" | "manifest"
    meta: Mapping[str, Any]
    created: int | None  # milliseconds since the epoch (the document header's time)
    by_status: Mapping[str | None, int]
    undeclared: Mapping[str, int] = field(default_factory=dict)  # latest status -> items


@dataclass(frozen=True, kw_only=True)
class ReasonCount:
    direction: str
    peer: str
    status: str
    reason: str
    count: int


@dataclass(frozen=True, kw_only=True)
class AttentionItem:
    """One entry whose latest status is disputed or outstanding (None: not acknowledged)."""

    direction: str
    peer: str
    document: str
    id: str
    status: str | None


@dataclass(frozen=True, kw_only=True)
class Party:
    name: str
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Where the figures come from, for a meeting: the parties' identities (as they compare
    them out of band), the head of the hash-chained audit log the report was read at, and the
    agreements the manifests name."""

    parties: tuple[Party, ...]  # this party first
    audit_seq: int
    audit_head: str | None  # hex of the last audit record's hash; None: an empty log
    agreements: tuple[str, ...] = ()


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, kw_only=True)
class CategoryLine:
    category: str | None
    items: int = 0  # distinct items: listed, manifested, or both
    listed: int = 0
    manifested: int = 0
    delivered: int = 0
    received: int = 0
    confirmed: int = 0
    unconfirmed: int = 0
    disputed: int = 0
    declined: int = 0
    outstanding: int = 0
    undeclared: int = 0  # acknowledged though never declared (not in ``items``)
    by_status: Mapping[str, int] = field(default_factory=dict)

    def group(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


@dataclass(frozen=True, kw_only=True)
class SideReport:
    side: str
    categories: tuple[CategoryLine, ...]
    total: CategoryLine


@dataclass(frozen=True, kw_only=True)
class ManifestLine:
    side: str
    peer: str
    id: str
    created: str | None
    batch: str | None
    agreement: str | None
    category: str | None
    declared: int | None  # meta.declared (a number, or the sum of a map of numbers)
    declared_detail: tuple[tuple[str, int], ...]
    entries: int
    acknowledged: int
    received: int  # declared entries acknowledged with a status that says they arrived
    not_received: int
    unacknowledged: int
    undeclared: int
    by_status: Mapping[str, int]

    @property
    def counted(self) -> int:
        """What the receiver counted: declared entries that arrived, plus undeclared ones."""
        return self.received + self.undeclared

    @property
    def difference(self) -> int | None:
        """Counted minus declared (negative: fewer than declared); None without a declaration."""
        return None if self.declared is None else self.counted - self.declared

    @property
    def complete(self) -> bool:
        """Every entry has an acknowledgement: the difference is final, not provisional."""
        return self.unacknowledged == 0


@dataclass(frozen=True, kw_only=True)
class ParityLine:
    """An all-for-all exchange with one peer, in persons handed over through manifests."""

    peer: str
    handed_over: int  # persons in our manifests that reached the peer
    received_by_peer: int  # of those, acknowledged by the peer as arrived
    peer_handed_over: int  # persons in the peer's manifests
    received_by_us: int  # of those, acknowledged by us as arrived

    @property
    def difference(self) -> int:
        """Persons we handed over (as the peer acknowledged) minus persons we received."""
        return self.received_by_peer - self.received_by_us


@dataclass(frozen=True, kw_only=True)
class QuotaLine:
    source: str  # "agreement" (--quota) | "roster" | "manifest"
    document: str | None
    side: str
    peer: str
    category: str | None  # None: all persons
    quota: int
    progress: int

    @property
    def remaining(self) -> int:
        return max(self.quota - self.progress, 0)

    @property
    def counts(self) -> str:
        """What the progress counts: a category, all persons, or a manifest's items."""
        if self.category is not None:
            return self.category
        return "items" if self.source == "manifest" else "persons"

    @property
    def percent(self) -> float:
        """Progress in percent, rounded down to one decimal: a quota one short of 1,000 shows
        99.9, never 100."""
        if not self.quota:
            return 0.0
        return math.floor(1000 * self.progress / self.quota) / 10


@dataclass(frozen=True, kw_only=True)
class ReasonLine:
    side: str
    peer: str
    status: str
    reason: str
    count: int


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    party: str
    peer: str | None  # the peer filter, None for all peers
    generated: str  # ISO 8601, from the caller's clock
    quota: int | None  # agreement-level quota (--quota)
    sides: tuple[SideReport, ...]
    manifests: tuple[ManifestLine, ...]
    parity: tuple[ParityLine, ...]
    quotas: tuple[QuotaLine, ...]
    reasons: tuple[ReasonLine, ...]
    notes: tuple[str, ...] = ()
    provenance: Provenance | None = None
    attention: tuple[AttentionItem, ...] = ()  # at most ATTENTION_LISTED of them
    attention_total: int = 0  # all of them

    def side(self, name: str) -> SideReport:
        for s in self.sides:
            if s.side == name:
                return s
        raise KeyError(name)
