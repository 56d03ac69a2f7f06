"""Reconciliation: per side and per category, how many persons and items were listed, put into
manifests, delivered, received, confirmed, disputed, or are still outstanding; declared against
counted per manifest; parity of an all-for-all exchange; progress against quotas.

Pure: the report is built from plain counts (which the store computes with grouped SQL, never
item by item in Python) and rendered as text (rich tables), JSON, CSV, or one self-contained
HTML page with inline CSS and inline SVG charts. No I/O, no clock: the caller passes the time.

Words used throughout:

- **side**: ``outbound`` is what this party sent (counted as the peer acknowledged it);
  ``inbound`` is what this party received (counted as this party acknowledged it).
- **category** of an item: a roster entry's is its roster's ``meta.category`` (the record
  schemas make each record's own category equal to it); a manifest item's is its own
  ``category`` field, else its manifest's ``meta.category``; ``None`` when none says (shown as
  "(no category)").
- An **item** is counted once per side, peer and category, by its id, or for a manifest item
  that names its ``roster_record``, by that record's id: a person listed on a roster and then
  put into a manifest (or re-manifested after NOT_RECEIVED) is one person. Its status is that
  of its latest manifest entry, else of its latest roster entry.
- **delivered** and **received** count handovers, that is items in manifests: delivered, its
  manifest reached the other bridge; received, acknowledged with a status that says it came
  over (``StatusRule.arrived``). The status groups (confirmed, disputed, outstanding, ...)
  count every item, listed or manifested.
- The per-manifest table counts that manifest's own entries (no merging across documents).

``STATUS_RULES`` below is the one grouping table: every status belongs to exactly one group, so
the groups of a category add up to its items.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bridge.core import times
from bridge.core.documents import ACK_STATUSES
from bridge.core.printable import json_text, printable

REPORT_KIND = "bridge.reconciliation"
REPORT_VERSION = 1

OUTBOUND = "outbound"
INBOUND = "inbound"
SIDES = (OUTBOUND, INBOUND)
SIDE_OF_DIRECTION = {"out": OUTBOUND, "in": INBOUND}

# Categories in the order a commission reads them; others follow alphabetically, then none.
KNOWN_CATEGORIES = ("pow", "civilian_detainee", "child_tracing", "remains")
# For persons, RECEIVED already confirms the handover of that person; remains (and anything
# of unknown category) are confirmed only by an identification (IDENTITY_CONFIRMED).
PERSON_CATEGORIES = frozenset({"pow", "civilian_detainee", "child_tracing"})
NO_STATUS = "none"  # the by_status key of items with no acknowledgement yet

# ---------------------------------------------------------------- the grouping table

CONFIRMED = "confirmed"
UNCONFIRMED = "unconfirmed"  # arrived, identity not (yet) confirmed
DISPUTED = "disputed"
DECLINED = "declined"
OUTSTANDING = "outstanding"
GROUPS = (CONFIRMED, UNCONFIRMED, DISPUTED, DECLINED, OUTSTANDING)
GROUP_LABELS = {CONFIRMED: "confirmed", UNCONFIRMED: "received, not confirmed",
                DISPUTED: "disputed", DECLINED: "declined", OUTSTANDING: "outstanding"}


@dataclass(frozen=True, kw_only=True)
class StatusRule:
    """How one acknowledgement status counts. ``arrived``: the item came over (it counts as
    received, and toward a manifest's counted total)."""

    status: str | None  # None: no acknowledgement yet
    persons: str  # group for items of a person category
    other: str  # group for remains and items of another or no category
    arrived: bool

    def group(self, category: str | None) -> str:
        return self.persons if category in PERSON_CATEGORIES else self.other


def _rule(status: str | None, persons: str, other: str, arrived: bool) -> StatusRule:
    return StatusRule(status=status, persons=persons, other=other, arrived=arrived)


STATUS_RULES: tuple[StatusRule, ...] = (
    #     status                    persons      other items  arrived
    _rule(None,                     OUTSTANDING, OUTSTANDING, False),
    _rule("RECEIVED",               CONFIRMED,   UNCONFIRMED, True),
    _rule("RECEIVED_UNDECLARED",    UNCONFIRMED, UNCONFIRMED, True),
    _rule("PENDING_IDENTIFICATION", OUTSTANDING, OUTSTANDING, True),
    _rule("IDENTITY_CONFIRMED",     CONFIRMED,   CONFIRMED,   True),
    _rule("IDENTITY_MISMATCH",      DISPUTED,    DISPUTED,    True),
    _rule("NOT_OWN_NATIONAL",       DISPUTED,    DISPUTED,    True),
    _rule("COMMINGLED",             DISPUTED,    DISPUTED,    True),
    # A dispute is about an item at hand (a count that differs is NOT_RECEIVED); a civilian on
    # a prisoner-of-war manifest stood at the crossing all the same.
    _rule("DISPUTED",               DISPUTED,    DISPUTED,    True),
    _rule("CATEGORY_INELIGIBLE",    DISPUTED,    DISPUTED,    True),
    _rule("ALREADY_EXCHANGED",      DISPUTED,    DISPUTED,    False),
    _rule("NOT_RECEIVED",           OUTSTANDING, OUTSTANDING, False),
    _rule("POSTPONED",              OUTSTANDING, OUTSTANDING, False),
    _rule("WITHHELD",               OUTSTANDING, OUTSTANDING, False),
    _rule("DECLINED_REPATRIATION",  DECLINED,    DECLINED,    False),
)
RULE_BY_STATUS: Mapping[str | None, StatusRule] = {r.status: r for r in STATUS_RULES}
assert set(RULE_BY_STATUS) == {None, *ACK_STATUSES}, "every status needs exactly one rule"
ARRIVED_STATUSES = tuple(str(r.status) for r in STATUS_RULES if r.arrived)
# Reasons worth listing: those given with any status short of a plain confirmation.
REASON_STATUSES = tuple(s for s in ACK_STATUSES if s not in ("RECEIVED", "IDENTITY_CONFIRMED"))


def rule_of(status: str | None) -> StatusRule:
    """The rule of ``status``; an unknown status (a newer peer's) counts as disputed, never as
    confirmed: a reconciliation must not hide what it does not understand."""
    return RULE_BY_STATUS.get(status) or _rule(status, DISPUTED, DISPUTED, False)


def grouping_table() -> list[dict[str, Any]]:
    """The grouping table as data (it travels with every JSON report, and the docs show it)."""
    return [{"status": r.status, "persons": r.persons, "other": r.other, "received": r.arrived}
            for r in STATUS_RULES]


# ---------------------------------------------------------------- input rows (from the store)


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

    def side(self, name: str) -> SideReport:
        for s in self.sides:
            if s.side == name:
                return s
        raise KeyError(name)


# ---------------------------------------------------------------- building


MAX_REASONS_PER_SIDE = 20
_TEXT_LIMIT = 120  # longest meta text shown (batch, agreement): enough, and a layout bound


def category_order(category: str | None) -> tuple[int, str]:
    if category is None:
        return (len(KNOWN_CATEGORIES) + 1, "")
    if category in KNOWN_CATEGORIES:
        return (KNOWN_CATEGORIES.index(category), category)
    return (len(KNOWN_CATEGORIES), category)


def _meta_text(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text[:_TEXT_LIMIT] or None


def _meta_category(meta: Mapping[str, Any]) -> str | None:
    value = meta.get("category")
    return value if isinstance(value, str) and value else None


def _count_value(value: Any) -> int | None:
    """A declared count, or None. Bounded like every integer in meta (PROTOCOL.md §3, Ranges):
    ``int()`` of a 16 KiB string of digits raises (Python's 4,300-digit limit), and a stored
    meta must never fail the reconciliation."""
    if times.check_int(value, minimum=0, maximum=times.MAX_JSON_INT) is None:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= len(str(times.MAX_JSON_INT)):
            return int(text) if int(text) <= times.MAX_JSON_INT else None
    return None


def parse_declared(value: Any) -> tuple[int | None, tuple[tuple[str, int], ...]]:
    """``meta.declared``: a number, or a map of numbers per kind or category (summed).
    Anything else is not a declaration (None)."""
    if value is None:
        return None, ()
    n = _count_value(value)
    if n is not None:
        return n, ()
    if isinstance(value, Mapping) and value:
        parts = [(str(k), _count_value(v)) for k, v in value.items()]
        if all(v is not None for _, v in parts):
            detail = tuple(sorted((k[:_TEXT_LIMIT], int(v or 0)) for k, v in parts))
            return sum(v for _, v in detail), detail
    return None, ()


def _add(acc: dict[str, Any], key: str, n: int) -> None:
    acc[key] = acc.get(key, 0) + n


def _line(category: str | None, acc: Mapping[str, Any]) -> CategoryLine:
    by_status = dict(sorted(acc.get("by_status", {}).items(), key=lambda kv: _status_order(kv[0])))
    return CategoryLine(category=category, by_status=by_status,
                        **{k: int(v) for k, v in acc.items() if k != "by_status"})


def _status_order(status: str) -> tuple[int, str]:
    order = {s: i for i, s in enumerate(ACK_STATUSES)}
    return (order.get(status, len(order) + (status == NO_STATUS)), status)


def build_reconciliation(*, party: str, peer: str | None, generated: str,
                         items: Iterable[ItemCount], documents: Iterable[DocumentCount],
                         reasons: Iterable[ReasonCount] = (), quota: int | None = None,
                         peers: Sequence[str] = ()) -> Reconciliation:
    """The report from grouped counts. ``peers``: peers to show in the parity and agreement
    quota even with nothing exchanged yet (with a quota given)."""
    notes: list[str] = []
    lines: dict[str, dict[str | None, dict[str, Any]]] = {s: {} for s in SIDES}
    # Parity and quotas count persons handed over through manifests: (side, peer, category).
    manifested: dict[tuple[str, str, str | None], int] = defaultdict(int)
    arrived: dict[tuple[str, str, str | None], int] = defaultdict(int)
    seen_peers: set[str] = set()
    for row in items:
        side = SIDE_OF_DIRECTION[row.direction]
        seen_peers.add(row.peer)
        rule = rule_of(row.status)
        acc = lines[side].setdefault(row.category, {"by_status": {}})
        n = row.count
        _add(acc, "items", n)
        _add(acc, rule.group(row.category), n)
        _add(acc["by_status"], row.status or NO_STATUS, n)
        # Delivered and received count handovers: a roster lists persons, it hands nobody
        # over. So listed >= ... and manifested >= delivered >= received, as a funnel.
        for flag, key in ((row.listed, "listed"), (row.manifested, "manifested"),
                          (row.manifested and row.reached, "delivered"),
                          (row.manifested and rule.arrived, "received")):
            if flag:
                _add(acc, key, n)
        if row.manifested and (row.reached or side == INBOUND):
            manifested[(side, row.peer, row.category)] += n
            if rule.arrived:
                arrived[(side, row.peer, row.category)] += n

    manifest_lines: list[ManifestLine] = []
    doc_quotas: list[tuple[DocumentCount, int, ManifestLine | None]] = []
    for doc in documents:
        side = SIDE_OF_DIRECTION[doc.direction]
        seen_peers.add(doc.peer)
        undeclared = sum(doc.undeclared.values())
        if undeclared:
            acc = lines[side].setdefault(_meta_category(doc.meta), {"by_status": {}})
            _add(acc, "undeclared", undeclared)
        mline = _manifest_line(doc, side, notes) if doc.type == "manifest" else None
        if mline is not None:
            manifest_lines.append(mline)
        if "quota" in doc.meta:
            q = _count_value(doc.meta["quota"])
            if q is None or q == 0:
                notes.append(f"{doc.type} {doc.id}: meta.quota is not a positive whole number; "
                             "ignored")
            else:
                doc_quotas.append((doc, q, mline))

    sides = []
    for side in SIDES:
        cats = tuple(_line(c, acc) for c, acc in sorted(lines[side].items(),
                                                       key=lambda kv: category_order(kv[0])))
        sides.append(SideReport(side=side, categories=cats, total=_total(cats)))

    def persons(table: Mapping[tuple[str, str, str | None], int], side: str, p: str) -> int:
        return sum(v for (s, pp, c), v in table.items()
                   if s == side and pp == p and c in PERSON_CATEGORIES)

    parity_peers = sorted({p for (_s, p, c) in manifested if c in PERSON_CATEGORIES}
                          | (set(peers) if quota is not None else set()))
    if peer is not None:
        parity_peers = [p for p in parity_peers if p == peer]
    parity = tuple(ParityLine(
        peer=p, handed_over=persons(manifested, OUTBOUND, p),
        received_by_peer=persons(arrived, OUTBOUND, p),
        peer_handed_over=persons(manifested, INBOUND, p),
        received_by_us=persons(arrived, INBOUND, p)) for p in parity_peers)

    quotas: list[QuotaLine] = []
    if quota is not None:
        for line in parity:
            for side, progress in ((OUTBOUND, line.received_by_peer),
                                   (INBOUND, line.received_by_us)):
                quotas.append(QuotaLine(source="agreement", document=None, side=side,
                                        peer=line.peer, category=None, quota=quota,
                                        progress=progress))
    for doc, q, mline in doc_quotas:
        side = SIDE_OF_DIRECTION[doc.direction]
        category = _meta_category(doc.meta)
        if mline is not None:
            progress = mline.counted
        elif category is None:
            progress = persons(arrived, side, doc.peer)
        else:
            progress = arrived.get((side, doc.peer, category), 0)
        quotas.append(QuotaLine(source=doc.type, document=doc.id, side=side, peer=doc.peer,
                                category=category, quota=q, progress=progress))

    reason_lines: list[ReasonLine] = []
    by_side: dict[str, list[ReasonCount]] = defaultdict(list)
    for r in reasons:
        by_side[SIDE_OF_DIRECTION[r.direction]].append(r)
    for side in SIDES:
        rows = sorted(by_side[side], key=lambda r: (-r.count, r.status, r.reason, r.peer))
        if len(rows) > MAX_REASONS_PER_SIDE:
            notes.append(f"{side}: the {MAX_REASONS_PER_SIDE} most frequent reasons of "
                         f"{len(rows)} are shown")
        reason_lines.extend(ReasonLine(side=side, peer=r.peer, status=r.status, reason=r.reason,
                                       count=r.count) for r in rows[:MAX_REASONS_PER_SIDE])

    manifest_lines.sort(key=lambda m: (SIDES.index(m.side), m.peer, m.created or "", m.id))
    return Reconciliation(party=party, peer=peer, generated=generated, quota=quota,
                          sides=tuple(sides), manifests=tuple(manifest_lines), parity=parity,
                          quotas=tuple(quotas), reasons=tuple(reason_lines), notes=tuple(notes))


def _total(cats: Sequence[CategoryLine]) -> CategoryLine:
    acc: dict[str, Any] = {"by_status": {}}
    for c in cats:
        for name in ("items", "listed", "manifested", "delivered", "received", "undeclared",
                     *GROUPS):
            _add(acc, name, c.group(name))
        for k, v in c.by_status.items():
            _add(acc["by_status"], k, v)
    return _line(None, acc)


def _manifest_line(doc: DocumentCount, side: str, notes: list[str]) -> ManifestLine:
    declared, detail = parse_declared(doc.meta.get("declared"))
    if declared is None and doc.meta.get("declared") is not None:
        notes.append(f"manifest {doc.id}: meta.declared is neither a number nor a map of "
                     "numbers; not compared")
    by_status = {(k or NO_STATUS): v for k, v in doc.by_status.items() if v}
    entries = sum(doc.by_status.values())
    unacknowledged = doc.by_status.get(None, 0)
    received = sum(v for k, v in doc.by_status.items() if k is not None and rule_of(k).arrived)
    return ManifestLine(
        side=side, peer=doc.peer, id=doc.id, created=times.format_optional(doc.created),
        batch=_meta_text(doc.meta, "batch"), agreement=_meta_text(doc.meta, "agreement"),
        category=_meta_category(doc.meta), declared=declared, declared_detail=detail,
        entries=entries, acknowledged=entries - unacknowledged, received=received,
        not_received=doc.by_status.get("NOT_RECEIVED", 0), unacknowledged=unacknowledged,
        undeclared=sum(doc.undeclared.values()),
        by_status=dict(sorted(by_status.items(), key=lambda kv: _status_order(kv[0]))))


# ---------------------------------------------------------------- JSON


def to_json(report: Reconciliation) -> dict[str, Any]:
    """The report as JSON-ready data (the local API's answer to GET /v1/reconcile)."""

    def cat(c: CategoryLine) -> dict[str, Any]:
        return {"category": c.category, "items": c.items, "listed": c.listed,
                "manifested": c.manifested, "delivered": c.delivered, "received": c.received,
                "confirmed": c.confirmed, "unconfirmed": c.unconfirmed,
                "disputed": c.disputed, "declined": c.declined, "outstanding": c.outstanding,
                "undeclared": c.undeclared, "by_status": dict(c.by_status)}

    return {
        "kind": REPORT_KIND, "version": REPORT_VERSION, "party": report.party,
        "peer": report.peer, "generated": report.generated, "quota": report.quota,
        "grouping": grouping_table(), "person_categories": sorted(PERSON_CATEGORIES),
        "sides": [{"side": s.side, "categories": [cat(c) for c in s.categories],
                   "total": cat(s.total)} for s in report.sides],
        "manifests": [{
            "side": m.side, "peer": m.peer, "id": m.id, "created": m.created, "batch": m.batch,
            "agreement": m.agreement, "category": m.category, "declared": m.declared,
            "declared_detail": dict(m.declared_detail), "entries": m.entries,
            "acknowledged": m.acknowledged, "received": m.received,
            "not_received": m.not_received, "unacknowledged": m.unacknowledged,
            "undeclared": m.undeclared, "counted": m.counted, "difference": m.difference,
            "complete": m.complete, "by_status": dict(m.by_status)} for m in report.manifests],
        "parity": [{"peer": p.peer, "handed_over": p.handed_over,
                    "received_by_peer": p.received_by_peer,
                    "peer_handed_over": p.peer_handed_over, "received_by_us": p.received_by_us,
                    "difference": p.difference} for p in report.parity],
        "quotas": [{"source": q.source, "document": q.document, "side": q.side, "peer": q.peer,
                    "category": q.category, "quota": q.quota, "progress": q.progress,
                    "remaining": q.remaining, "percent": q.percent}
                   for q in report.quotas],
        "reasons": [{"side": r.side, "peer": r.peer, "status": r.status, "reason": r.reason,
                     "count": r.count} for r in report.reasons],
        "notes": list(report.notes),
    }


def render_json(report: Reconciliation) -> str:
    return json_text(to_json(report)) + "\n"


class ReportFormatError(ValueError):
    """A JSON report that is not a reconciliation this version can read."""


def _get(obj: Any, key: str, kind: type | tuple[type, ...], *, optional: bool = False,
         where: str = "$") -> Any:
    if not isinstance(obj, dict):
        raise ReportFormatError(f"{where} must be an object")
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ReportFormatError(f"{where}.{key} is missing or of the wrong type")
    return value


def _counts(obj: Any, where: str) -> dict[str, int]:
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in obj.items()):
        raise ReportFormatError(f"{where} must map names to whole numbers")
    return dict(obj)


def from_json(data: Any) -> Reconciliation:
    """The report back from ``to_json`` data (what the CLI renders from the API's answer)."""
    if _get(data, "kind", str) != REPORT_KIND or _get(data, "version", int) != REPORT_VERSION:
        raise ReportFormatError(f"not a {REPORT_KIND} report of version {REPORT_VERSION}")

    def ints(obj: Any, where: str, *names: str) -> dict[str, int]:
        return {n: int(_get(obj, n, int, where=where)) for n in names}

    def cat(obj: Any, where: str) -> CategoryLine:
        return CategoryLine(category=_get(obj, "category", str, optional=True, where=where),
                            by_status=_counts(_get(obj, "by_status", dict, where=where), where),
                            **ints(obj, where, "items", "listed", "manifested", "delivered",
                                   "received", "undeclared", *GROUPS))

    sides = []
    for n, s in enumerate(_get(data, "sides", list)):
        where = f"$.sides[{n}]"
        sides.append(SideReport(
            side=_get(s, "side", str, where=where),
            categories=tuple(cat(c, f"{where}.categories[{i}]")
                             for i, c in enumerate(_get(s, "categories", list, where=where))),
            total=cat(_get(s, "total", dict, where=where), f"{where}.total")))
    manifests = []
    for n, m in enumerate(_get(data, "manifests", list)):
        where = f"$.manifests[{n}]"
        n_ = ints(m, where, "entries", "acknowledged", "received", "not_received",
                  "unacknowledged", "undeclared")
        manifests.append(ManifestLine(
            side=_get(m, "side", str, where=where), peer=_get(m, "peer", str, where=where),
            id=_get(m, "id", str, where=where),
            created=_get(m, "created", str, optional=True, where=where),
            batch=_get(m, "batch", str, optional=True, where=where),
            agreement=_get(m, "agreement", str, optional=True, where=where),
            category=_get(m, "category", str, optional=True, where=where),
            declared=_get(m, "declared", int, optional=True, where=where),
            declared_detail=tuple(sorted(_counts(_get(m, "declared_detail", dict, where=where),
                                                 where).items())),
            by_status=_counts(_get(m, "by_status", dict, where=where), where),
            entries=n_["entries"], acknowledged=n_["acknowledged"], received=n_["received"],
            not_received=n_["not_received"], unacknowledged=n_["unacknowledged"],
            undeclared=n_["undeclared"]))
    parity = tuple(ParityLine(peer=_get(p, "peer", str, where=f"$.parity[{n}]"),
                              **ints(p, f"$.parity[{n}]", "handed_over", "received_by_peer",
                                     "peer_handed_over", "received_by_us"))
                   for n, p in enumerate(_get(data, "parity", list)))
    quotas = tuple(QuotaLine(
        source=_get(q, "source", str, where=f"$.quotas[{n}]"),
        document=_get(q, "document", str, optional=True, where=f"$.quotas[{n}]"),
        side=_get(q, "side", str, where=f"$.quotas[{n}]"),
        peer=_get(q, "peer", str, where=f"$.quotas[{n}]"),
        category=_get(q, "category", str, optional=True, where=f"$.quotas[{n}]"),
        **ints(q, f"$.quotas[{n}]", "quota", "progress"))
        for n, q in enumerate(_get(data, "quotas", list)))
    reasons = tuple(ReasonLine(
        side=_get(r, "side", str, where=f"$.reasons[{n}]"),
        peer=_get(r, "peer", str, where=f"$.reasons[{n}]"),
        status=_get(r, "status", str, where=f"$.reasons[{n}]"),
        reason=_get(r, "reason", str, where=f"$.reasons[{n}]"),
        count=_get(r, "count", int, where=f"$.reasons[{n}]"))
        for n, r in enumerate(_get(data, "reasons", list)))
    notes = tuple(str(x) for x in _get(data, "notes", list))
    return Reconciliation(
        party=_get(data, "party", str), peer=_get(data, "peer", str, optional=True),
        generated=_get(data, "generated", str), quota=_get(data, "quota", int, optional=True),
        sides=tuple(sides), manifests=tuple(manifests), parity=parity, quotas=quotas,
        reasons=reasons, notes=notes)


# ---------------------------------------------------------------- shared wording


def num(n: int) -> str:
    return f"{n:,}"


def signed(n: int) -> str:
    """+3, −3 (a real minus sign), 0."""
    if n > 0:
        return f"+{n:,}"
    if n < 0:
        return f"\u2212{-n:,}"
    return "0"


def category_label(category: str | None) -> str:
    return "(no category)" if category is None else category


def side_title(report: Reconciliation, side: str) -> str:
    other = report.peer or "peers"
    if side == OUTBOUND:
        return f"Outbound: what {report.party} sent to {other}, as the peer acknowledged it"
    return f"Inbound: what {report.party} received from {other}, as {report.party} " \
           "acknowledged it"


def scope(report: Reconciliation) -> str:
    who = f"with {report.peer}" if report.peer else "with all peers"
    quota = f"; agreement quota {num(report.quota)} a side" if report.quota is not None else ""
    return f"{report.party} {who}; generated {report.generated}{quota}"


def grouping_summary() -> list[tuple[str, str]]:
    """(group label, statuses) lines for legends."""
    out = []
    for g in GROUPS:
        names = []
        for r in STATUS_RULES:
            status = r.status or "no acknowledgement yet"
            if r.persons == g and r.other == g:
                names.append(status)
            elif r.persons == g:
                names.append(f"{status} (persons)")
            elif r.other == g:
                names.append(f"{status} (remains, other)")
        out.append((GROUP_LABELS[g], ", ".join(names)))
    return out


CATEGORY_COLUMNS = (("listed", "Listed"), ("manifested", "In manifests"),
                    ("delivered", "Delivered"), ("received", "Received"),
                    ("confirmed", "Confirmed"), ("unconfirmed", "Not confirmed"),
                    ("disputed", "Disputed"), ("declined", "Declined"),
                    ("outstanding", "Outstanding"), ("undeclared", "Undeclared"))


# ---------------------------------------------------------------- text (rich)


def safe_text(value: object, style: str = "") -> Text:
    """Data for a terminal: a ``Text`` (so never parsed as rich markup: ``[link=…]`` stays
    those characters) with every control, bidi or other non-printable character shown as its
    escape (so no ESC sequence, OSC 8 link or reordering reaches the terminal; PROTOCOL §10)."""
    return Text(printable(value), style=style)


def text_renderables(report: Reconciliation) -> list[RenderableType]:
    """Rich renderables for a terminal. Every text from data goes in through
    :func:`safe_text` (fixed labels and numbers as plain ``Text``), so a category, id or
    reason can neither style, link nor hide the output."""
    out: list[RenderableType] = [
        safe_text(f"Reconciliation: {scope(report)}", style="bold")]
    for s in report.sides:
        table = Table(title=safe_text(side_title(report, s.side)), title_justify="left",
                      box=None, pad_edge=False, show_footer=True, header_style="bold")
        table.add_column("Category", footer=Text("Total", style="bold"), overflow="fold",
                         max_width=24)
        for key, label in CATEGORY_COLUMNS:
            table.add_column(label.replace(" ", "\n"), justify="right", no_wrap=True,
                             footer=Text(num(s.total.group(key)), style="bold"))
        for c in s.categories:
            table.add_row(safe_text(category_label(c.category)),
                          *(Text(num(c.group(k))) for k, _ in CATEGORY_COLUMNS))
        if not s.categories:
            table.add_row(Text("nothing yet", style="dim"), *("" for _ in CATEGORY_COLUMNS))
        out += [Text(""), table]
    if report.manifests:
        table = Table(title=Text("Declared versus counted, per manifest"), title_justify="left",
                      box=None, pad_edge=False, header_style="bold")
        for label, justify in (("Manifest", "left"), ("Side", "left"),
                               ("Batch", "left"), ("Declared", "right"), ("Entries", "right"),
                               ("Acknowledged", "right"), ("Received", "right"),
                               ("Not received", "right"), ("Undeclared", "right"),
                               ("Difference", "right")):
            if justify == "right":
                table.add_column(label.replace(" ", "\n"), justify="right", no_wrap=True)
            else:
                table.add_column(label, overflow="fold", min_width=20 if label == "Manifest"
                                 else None)
        for m in report.manifests:
            diff = Text("n/a", style="dim") if m.difference is None else Text(
                signed(m.difference) + ("" if m.complete else " so far"),
                style="bold red" if m.difference else "green")
            table.add_row(safe_text(m.id), safe_text(_side_short(m.side, m.peer)),
                          safe_text(m.batch or ""),
                          Text(_declared_text(m)), Text(num(m.entries)),
                          Text(num(m.acknowledged)), Text(num(m.received)),
                          Text(num(m.not_received)), Text(num(m.undeclared)), diff)
        out += [Text(""), table]
    if report.parity:
        table = Table(title=Text("Parity (all-for-all): persons handed over through manifests"),
                      title_justify="left", box=None, pad_edge=False, header_style="bold")
        for label in ("Peer", f"{report.party} handed over", "received by peer",
                      "peer handed over", f"received by {report.party}", "Difference"):
            table.add_column(safe_text(label), justify="left" if label == "Peer" else "right")
        for p in report.parity:
            table.add_row(safe_text(p.peer), Text(num(p.handed_over)),
                          Text(num(p.received_by_peer)),
                          Text(num(p.peer_handed_over)), Text(num(p.received_by_us)),
                          Text(signed(p.difference),
                               style="bold red" if p.difference else "green"))
        out += [Text(""), table]
    if report.quotas:
        table = Table(title=Text("Progress against quotas"), title_justify="left", box=None,
                      pad_edge=False, header_style="bold")
        for label in ("Quota of", "Side", "Peer", "Category", "Quota", "Progress", "%",
                      "Remaining"):
            table.add_column(label, justify="right" if label in (
                "Quota", "Progress", "%", "Remaining") else "left")
        for q in report.quotas:
            table.add_row(safe_text(_quota_source(q)), safe_text(q.side), safe_text(q.peer),
                          safe_text(q.counts), Text(num(q.quota)),
                          Text(num(q.progress)), Text(f"{q.percent:.1f}"),
                          Text(num(q.remaining)))
        out += [Text(""), table]
    if report.reasons:
        table = Table(title=Text("Reasons given"), title_justify="left", box=None,
                      pad_edge=False, header_style="bold")
        for label in ("Side", "Peer", "Status", "Items", "Reason"):
            table.add_column(label, justify="right" if label == "Items" else "left")
        for r in report.reasons:
            table.add_row(safe_text(r.side), safe_text(r.peer), safe_text(r.status),
                          Text(num(r.count)), safe_text(_one_line(r.reason)))
        out += [Text(""), table]
    legend = Table.grid(padding=(0, 2))
    legend.add_column(style="dim", no_wrap=True)
    legend.add_column(style="dim")
    for label, statuses in grouping_summary():
        legend.add_row(label, statuses)
    legend.add_row("received", "items in manifests acknowledged with "
                   + ", ".join(ARRIVED_STATUSES))
    legend.add_row("persons", ", ".join(sorted(PERSON_CATEGORIES)))
    out += [Text(""), Text("How statuses count", style="dim bold"), legend, Text("")]
    for note in report.notes:
        out.append(safe_text(f"note: {note}", style="yellow"))
    return out


def render_text(report: Reconciliation, *, width: int = 120, color: bool = False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color,
                      highlight=False, soft_wrap=False)
    console.print(Group(*text_renderables(report)))
    return buf.getvalue()


def _side_short(side: str, peer: str) -> str:
    return f"out \u2192 {peer}" if side == OUTBOUND else f"in \u2190 {peer}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _declared_text(m: ManifestLine) -> str:
    if m.declared is None:
        return "-"
    return num(m.declared)


def _quota_source(q: QuotaLine) -> str:
    return "agreement (--quota)" if q.source == "agreement" else f"{q.source} {q.document}"


# ---------------------------------------------------------------- CSV


_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP
    "CSV injection"); control and bidi characters are shown escaped, as on a terminal; numbers
    stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = printable(value)
        if value.startswith(_CSV_FORMULA_START):
            return "'" + value
    return value


def render_csv(report: Reconciliation) -> str:
    """One CSV of several blocks, each a header row (first cell ``section``) and its rows,
    blocks separated by an empty line: a spreadsheet shows each as its own table."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")

    def block(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        if buf.tell():
            w.writerow([])
        w.writerow(["section", *header])
        for row in rows:
            w.writerow([_csv_cell(v) for v in row])

    block(["party", "peer", "generated", "quota"],
          [["report", report.party, report.peer or "all", report.generated, report.quota]])
    keys = ("items", *(k for k, _ in CATEGORY_COLUMNS))
    block(["side", "category", *keys], (
        ["categories", s.side, "TOTAL" if c is s.total else category_label(c.category),
         *(c.group(k) for k in keys)]
        for s in report.sides for c in (*s.categories, s.total)))
    block(["side", "peer", "manifest", "created", "batch", "agreement", "category", "declared",
           "entries", "acknowledged", "received", "not_received", "unacknowledged",
           "undeclared", "counted", "difference", "complete"],
          (["manifests", m.side, m.peer, m.id, m.created, m.batch, m.agreement, m.category,
            m.declared, m.entries, m.acknowledged, m.received, m.not_received,
            m.unacknowledged, m.undeclared, m.counted, m.difference,
            "yes" if m.complete else "no"] for m in report.manifests))
    block(["peer", "handed_over", "received_by_peer", "peer_handed_over", "received_by_us",
           "difference"],
          (["parity", p.peer, p.handed_over, p.received_by_peer, p.peer_handed_over,
            p.received_by_us, p.difference] for p in report.parity))
    block(["source", "document", "side", "peer", "category", "quota", "progress", "remaining",
           "percent"],
          (["quotas", q.source, q.document, q.side, q.peer, q.counts, q.quota,
            q.progress, q.remaining, f"{q.percent:.1f}"] for q in report.quotas))
    block(["side", "peer", "status", "reason", "items"],
          (["reasons", r.side, r.peer, r.status, _one_line(r.reason), r.count]
           for r in report.reasons))
    block(["status", "group_persons", "group_other", "received"],
          (["grouping", r.status or "(no acknowledgement)", r.persons, r.other,
            "yes" if r.arrived else "no"] for r in STATUS_RULES))
    return buf.getvalue()


# ---------------------------------------------------------------- HTML


# Okabe & Ito's palette: told apart by readers with any common colour-vision deficiency.
# Labels on the bars are dark: on each of these colours, near-black has more contrast than
# white (about 6:1 against 3.4:1 on the green).
GROUP_COLOURS = {CONFIRMED: "#009E73", UNCONFIRMED: "#56B4E9", DISPUTED: "#D55E00",
                 DECLINED: "#CC79A7", OUTSTANDING: "#E69F00"}
_GREY = "#c9ccd1"


def esc(value: object) -> str:
    """Every text that reaches the page goes through here (element content and attributes):
    HTML-escaped, and control or bidi characters shown as escapes (a right-to-left override
    must not reorder what a reader sees)."""
    return html.escape(printable(value), quote=True)


def fit(text: str, limit: int, *, middle: bool = False) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: at the end, or in the middle
    (for ids, whose ends tell batches apart). Charts carry the full text in a tooltip."""
    if len(text) <= limit:
        return text
    if middle:
        head = (limit - 1) // 2
        return text[:head] + "\u2026" + text[len(text) - (limit - 1 - head):]
    return text[: limit - 1] + "\u2026"


def _titled(svg_text: str, full: str) -> str:
    """A chart label with its full text as a tooltip."""
    return svg_text.replace("</text>", f"<title>{esc(full)}</title></text>", 1)


def _bar_scale(total: int, width: float) -> float:
    return width / total if total > 0 else 0.0


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{esc(label)}" preserveAspectRatio="xMinYMin meet">')


def _svg_text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{cls_attr}>'
            f"{esc(text)}</text>")


def _segments(x0: float, y: float, h: float, scale: float,
              parts: Sequence[tuple[str, int, str, str]]) -> tuple[list[str], float]:
    """Rectangles side by side; parts are (css colour, count, tooltip, label)."""
    out, x = [], x0
    for colour, count, tip, label in parts:
        if count <= 0:
            continue
        w = count * scale
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1.5):.1f}" height="{h:.1f}" '
                   f'fill="{colour}"><title>{esc(tip)}</title></rect>')
        if w >= 14 + 11 * len(label):
            out.append(_svg_text(x + w / 2, y + h / 2 + 7, label, anchor="middle",
                                 cls="seg"))
        x += w
    return out, x


def svg_categories(side: SideReport) -> str:
    """Stacked bars, one per category: how its items stand, group by group."""
    label_w, bar_w, right_w, row_h, bar_h, top = 280, 770, 150, 56, 34, 8
    width = label_w + bar_w + right_w
    rows = list(side.categories)
    height = top + row_h * max(len(rows), 1) + 8
    scale = _bar_scale(max((c.items for c in rows), default=0), bar_w)
    out = [_svg_open(width, height, f"{side.side}: items by category and status group")]
    if not rows:
        out.append(_svg_text(label_w, top + 36, "nothing exchanged yet", cls="muted"))
    for n, c in enumerate(rows):
        y = top + n * row_h
        label = category_label(c.category)
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 8, fit(label, 19),
                                     anchor="end", cls="label"), label))
        parts = [(GROUP_COLOURS[g], c.group(g),
                  f"{category_label(c.category)}: {num(c.group(g))} {GROUP_LABELS[g]}",
                  num(c.group(g))) for g in GROUPS]
        segs, x = _segments(label_w, y, bar_h, scale, parts)
        out += segs
        out.append(_svg_text(x + 12, y + bar_h / 2 + 8, f"{num(c.items)} items", cls="value"))
    out.append("</svg>")
    return "".join(out)


def svg_manifests(manifests: Sequence[ManifestLine]) -> str:
    """Per manifest: its entries by outcome, a marker at the declared count, the difference."""
    label_w, bar_w, right_w, row_h, bar_h, top = 340, 580, 280, 72, 32, 12
    width = label_w + bar_w + right_w
    height = top + row_h * len(manifests) + 10
    biggest = max((max(m.entries + m.undeclared, m.declared or 0) for m in manifests), default=0)
    scale = _bar_scale(biggest, bar_w)
    out = [_svg_open(width, height, "declared versus counted, per manifest")]
    for n, m in enumerate(manifests):
        y = top + n * row_h
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 2, fit(m.id, 20, middle=True),
                                     anchor="end", cls="label"), m.id))
        sub = f"{m.side} \u00b7 {m.peer}" + (f" \u00b7 batch {m.batch}" if m.batch else "")
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 24, fit(sub, 34),
                                     anchor="end", cls="muted small"), sub))
        other = m.acknowledged - m.received - m.not_received
        parts = [
            (GROUP_COLOURS[CONFIRMED], m.received, f"{m.id}: {num(m.received)} "
             "declared and received", num(m.received)),
            (GROUP_COLOURS[UNCONFIRMED], m.undeclared,
             f"{m.id}: {num(m.undeclared)} received undeclared", num(m.undeclared)),
            (GROUP_COLOURS[DISPUTED], m.not_received,
             f"{m.id}: {num(m.not_received)} not received", num(m.not_received)),
            (GROUP_COLOURS[DECLINED], other,
             f"{m.id}: {num(other)} acknowledged, not handed over", num(other)),
            (_GREY, m.unacknowledged,
             f"{m.id}: {num(m.unacknowledged)} not acknowledged yet", num(m.unacknowledged)),
        ]
        segs, _x = _segments(label_w, y, bar_h, scale, parts)
        out += segs
        if m.declared is not None:
            xd = label_w + m.declared * scale
            out.append(f'<line x1="{xd:.1f}" y1="{y - 6:.1f}" x2="{xd:.1f}" '
                       f'y2="{y + bar_h + 6:.1f}" class="marker"><title>'
                       f"{esc(f'{m.id}: declared {num(m.declared)}')}</title></line>")
            diff = m.difference or 0
            big = signed(diff) + ("" if m.complete else " so far")
            cls = "diff bad" if diff else "diff ok"
            small = f"{num(m.counted)} counted of {num(m.declared)} declared"
        else:
            cls, big, small = "muted", "not declared", f"{num(m.counted)} counted"
        x_right = label_w + bar_w + right_w - 4
        out.append(_svg_text(x_right, y + bar_h / 2 + 2, big, anchor="end", cls=cls))
        out.append(_svg_text(x_right, y + bar_h / 2 + 24, small, anchor="end",
                             cls="muted small"))
    out.append("</svg>")
    return "".join(out)


def svg_parity(report: Reconciliation, p: ParityLine) -> str:
    """Two bars from a common axis: persons we handed over (as the peer acknowledged) and
    persons we received; the lighter bar behind each is what the manifests declared."""
    half, mid_gap, label_h, bar_h = 520, 8, 34, 40
    width = 2 * half + 2 * mid_gap
    height = label_h + bar_h + 56
    biggest = max(p.handed_over, p.received_by_peer, p.peer_handed_over, p.received_by_us)
    scale = _bar_scale(biggest, half - 20)
    cx = half + mid_gap
    y = label_h
    out = [_svg_open(width, height, f"parity with {p.peer}")]
    out.append(_svg_text(cx - mid_gap - 4, 24, f"{report.party} \u2192 {p.peer}",
                         anchor="end", cls="label"))
    out.append(_svg_text(cx + mid_gap + 4, 24, f"{p.peer} \u2192 {report.party}",
                         cls="label"))
    for declared, received, sign in ((p.handed_over, p.received_by_peer, -1),
                                     (p.peer_handed_over, p.received_by_us, 1)):
        for count, colour in ((declared, _GREY), (received, GROUP_COLOURS[CONFIRMED])):
            w = count * scale
            x = cx - mid_gap - w if sign < 0 else cx + mid_gap
            if count > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" '
                           f'height="{bar_h}" fill="{colour}"/>')
        tx = cx - mid_gap - received * scale - 10 if sign < 0 else \
            cx + mid_gap + received * scale + 10
        anchor = "end" if sign < 0 else "start"
        if received * scale > 120:  # the number fits inside the bar
            tx = cx - mid_gap - 10 if sign < 0 else cx + mid_gap + 10
            out.append(_svg_text(tx, y + bar_h / 2 + 8, num(received), anchor=anchor,
                                 cls="seg"))
        else:
            out.append(_svg_text(tx, y + bar_h / 2 + 8, num(received), anchor=anchor,
                                 cls="value"))
    out.append(f'<line x1="{cx}" y1="{y - 8}" x2="{cx}" y2="{y + bar_h + 8}" class="axis"/>')
    out.append(_svg_text(
        cx, y + bar_h + 40,
        f"received by {p.peer} {num(p.received_by_peer)} \u00b7 received by {report.party} "
        f"{num(p.received_by_us)} \u00b7 difference {signed(p.difference)}",
        anchor="middle", cls="diff bad" if p.difference else "diff ok"))
    out.append("</svg>")
    return "".join(out)


def svg_quota(q: QuotaLine) -> str:
    bar_w, bar_h = 880, 30
    out = [_svg_open(bar_w + 320, bar_h + 8, f"quota progress {q.percent:.1f} percent")]
    out.append(f'<rect x="0" y="4" width="{bar_w}" height="{bar_h}" fill="#eceef1"/>')
    w = min(q.progress / q.quota, 1.0) * bar_w if q.quota else 0
    if w > 0:
        out.append(f'<rect x="0" y="4" width="{w:.1f}" height="{bar_h}" '
                   f'fill="{GROUP_COLOURS[CONFIRMED]}"/>')
    out.append(_svg_text(bar_w + 14, bar_h / 2 + 12,
                         f"{num(q.progress)} / {num(q.quota)} ({q.percent:g}%)", cls="value"))
    out.append("</svg>")
    return "".join(out)


_CSS = """
:root { --ink: #14171a; --muted: #5b6470; --line: #d5d9de; --bg: #ffffff; --band: #f4f6f8; }
* { box-sizing: border-box; }
html { font-size: 18px; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font-family: "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif; line-height: 1.4; }
main { max-width: 1400px; margin: 0 auto; padding: 28px 36px 48px; }
h1 { font-size: 2rem; margin: 0 0 4px; }
h2 { font-size: 1.45rem; margin: 40px 0 10px; padding-top: 16px; border-top: 3px solid var(--ink); }
h3 { font-size: 1.15rem; margin: 22px 0 6px; }
p.sub, .muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px;
  margin-top: 20px; }
.card { background: var(--band); border-radius: 10px; padding: 14px 20px; }
.card h3 { margin: 0 0 8px; font-size: 1.05rem; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 26px; }
.figure b { display: block; font-size: 2.1rem; font-variant-numeric: tabular-nums;
  line-height: 1.1; }
.figure span { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 4px; font-size: .94rem;
  font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; vertical-align: bottom; }
th:first-child, td:first-child, td.t, th.t { text-align: left; }
td.x { overflow-wrap: anywhere; min-width: 9em; }
td.n { white-space: nowrap; }
.detail { display: block; font-size: .8rem; color: var(--muted); overflow-wrap: anywhere; }
tr.total td { font-weight: 700; border-top: 2px solid var(--ink); }
td.bad, .bad { color: #b23c00; font-weight: 700; }
td.ok, .ok { color: #00704f; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 6px 0 2px; font-size: .95rem; }
.legend i { display: inline-block; width: 18px; height: 18px; border-radius: 3px;
  vertical-align: -3px; margin-right: 6px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 6px 0; }
svg text { font-family: inherit; font-size: 20px; fill: var(--ink); }
svg text.label { font-weight: 600; }
svg text.small { font-size: 16px; }
svg text.seg { font-weight: 700; font-size: 18px; }
svg text.value { fill: var(--ink); }
svg text.muted { fill: var(--muted); }
svg text.diff { font-weight: 700; }
svg text.bad { fill: #b23c00; }
svg text.ok { fill: #00704f; }
svg line.marker { stroke: var(--ink); stroke-width: 4; }
svg line.axis { stroke: var(--ink); stroke-width: 2; }
ul.notes li { color: #7a4d00; }
dl.groups { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px;
  font-size: .9rem; }
dl.groups dt { font-weight: 700; }
dl.groups dd { margin: 0; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: .85rem; }
@media print { html { font-size: 12pt; } main { max-width: none; padding: 0; }
  h2 { break-after: avoid; } section, .card, table, svg { break-inside: avoid; } }
"""


def _legend(groups: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{colour}"></i>{esc(label)}</span>'
        for colour, label in groups) + "</div>"


def _table(header: Sequence[tuple[str, str]], rows: Iterable[Sequence[tuple[str, str]]],
           *, total: Sequence[tuple[str, str]] | None = None) -> str:
    """Cells are (css class, already escaped html)."""
    out = ["<table><thead><tr>"]
    out += [f'<th class="{c}">{h}</th>' for c, h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' for c, v in row) + "</tr>")
    if total is not None:
        out.append('<tr class="total">' + "".join(f'<td class="{c}">{v}</td>'
                                                  for c, v in total) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _wrap(text: str, base: str = "t") -> str:
    """Short texts stay on one line; long ones (hostile or not) wrap anywhere rather than
    widen the page."""
    return f"{base} n" if len(text) <= 32 else f"{base} x"


def _n(n: int, cls: str = "n") -> tuple[str, str]:
    return cls, esc(num(n))


def _diff_cell(diff: int | None, suffix: str = "") -> tuple[str, str]:
    if diff is None:
        return "muted n", "n/a"
    return ("bad n" if diff else "ok n"), esc(signed(diff) + suffix)


def _declared_cell(m: ManifestLine) -> tuple[str, str]:
    if not m.declared_detail:
        return "n", esc(_declared_text(m))
    detail = ", ".join(f"{k} {num(v)}" for k, v in m.declared_detail)
    return _wrap(detail, ""), (esc(_declared_text(m)) + '<span class="detail">' + esc(detail)
                               + "</span>")


def render_html(report: Reconciliation) -> str:
    """One self-contained page: inline CSS, inline SVG, no script, no external reference (a
    Content-Security-Policy forbids loading anything). Every data text is escaped."""
    title = f"Reconciliation \u2014 {report.party}"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>", f'<p class="sub">{esc(scope(report))}</p>',
    ]
    parts.append('<div class="cards">')
    for s in report.sides:
        t = s.total
        figures = [("items", t.items, ""), ("confirmed", t.confirmed, "ok"),
                   ("received", t.received, ""), ("disputed", t.disputed,
                                                   "bad" if t.disputed else ""),
                   ("outstanding", t.outstanding, "bad" if t.outstanding else "")]
        parts.append(f'<div class="card"><h3>{esc(side_title(report, s.side))}</h3>'
                     '<div class="figures">' + "".join(
                         f'<div class="figure"><b class="{c}">{esc(num(v))}</b>'
                         f"<span>{esc(k)}</span></div>" for k, v, c in figures)
                     + "</div></div>")
    parts.append("</div>")

    parts.append("<section><h2>By category</h2>")
    parts.append(_legend([(GROUP_COLOURS[g], GROUP_LABELS[g]) for g in GROUPS]))
    for s in report.sides:
        parts.append(f"<h3>{esc(side_title(report, s.side))}</h3>")
        parts.append(svg_categories(s))
        header = [("t", "Category"), *(("", esc(label)) for _, label in CATEGORY_COLUMNS)]
        rows = [[(_wrap(category_label(c.category)), esc(category_label(c.category))),
                 *(_n(c.group(k)) for k, _ in CATEGORY_COLUMNS)] for c in s.categories]
        total = [("t", "Total"), *(_n(s.total.group(k)) for k, _ in CATEGORY_COLUMNS)]
        parts.append(_table(header, rows, total=total))
    parts.append("</section>")

    if report.manifests:
        parts.append("<section><h2>Declared versus counted, per manifest</h2>")
        parts.append(_legend([(GROUP_COLOURS[CONFIRMED], "declared and received"),
                              (GROUP_COLOURS[UNCONFIRMED], "received undeclared"),
                              (GROUP_COLOURS[DISPUTED], "not received"),
                              (GROUP_COLOURS[DECLINED], "acknowledged, not handed over"),
                              (_GREY, "not acknowledged yet"),
                              ("#14171a", "declared count (marker)")]))
        parts.append(svg_manifests(report.manifests))
        header = [("t", "Manifest"), ("t", "Side"), ("t", "Batch"),
                  ("", "Declared"), ("", "Entries"), ("", "Acknowledged"), ("", "Received"),
                  ("", "Not received"), ("", "Undeclared"), ("", "Counted"),
                  ("", "Difference")]
        rows = [[(_wrap(m.id), esc(m.id)), ("t n", esc(_side_short(m.side, m.peer))),
                 (_wrap(m.batch or ""), esc(m.batch or "")),
                 _declared_cell(m),
                 _n(m.entries), _n(m.acknowledged), _n(m.received), _n(m.not_received),
                 _n(m.undeclared), _n(m.counted),
                 _diff_cell(m.difference, "" if m.complete else " so far")]
                for m in report.manifests]
        parts.append(_table(header, rows))
        parts.append('<p class="muted">Counted = declared entries acknowledged as arrived plus '
                     "items received undeclared; difference = counted \u2212 declared "
                     "(\u201cso far\u201d while some entries have no acknowledgement).</p>")
        parts.append("</section>")

    if report.parity:
        parts.append("<section><h2>Parity (all-for-all)</h2>")
        parts.append('<p class="muted">Persons handed over through manifests, as acknowledged '
                     "by the receiving side; the lighter bar is what the manifests declared."
                     "</p>")
        for p in report.parity:
            parts.append(svg_parity(report, p))
        header = [("t", "Peer"), ("", esc(f"{report.party} handed over")),
                  ("", "received by peer"), ("", "peer handed over"),
                  ("", esc(f"received by {report.party}")), ("", "Difference")]
        parts.append(_table(header, ([("t", esc(p.peer)), _n(p.handed_over),
                                      _n(p.received_by_peer), _n(p.peer_handed_over),
                                      _n(p.received_by_us), _diff_cell(p.difference)]
                                     for p in report.parity)))
        parts.append("</section>")

    if report.quotas:
        parts.append("<section><h2>Progress against quotas</h2>")
        for q in report.quotas:
            parts.append(f"<h3>{esc(_quota_source(q))} \u00b7 {esc(q.side)} \u00b7 "
                         f"{esc(q.peer)} \u00b7 {esc(q.counts)}</h3>")
            parts.append(svg_quota(q))
        parts.append("</section>")

    if report.reasons:
        parts.append("<section><h2>Reasons given</h2>")
        parts.append(_table([("t", "Side"), ("t", "Peer"), ("t", "Status"), ("", "Items"),
                             ("t", "Reason")],
                            ([("t n", esc(r.side)), ("t n", esc(r.peer)),
                              ("t n", esc(r.status)), _n(r.count),
                              ("t", esc(_one_line(r.reason)))]
                             for r in report.reasons)))
        parts.append("</section>")

    if report.notes:
        parts.append('<section><h2>Notes</h2><ul class="notes">'
                     + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul></section>")

    parts.append("<section><h2>How statuses count</h2><dl class=\"groups\">")
    for label, statuses in grouping_summary():
        parts.append(f"<dt>{esc(label)}</dt><dd>{esc(statuses)}</dd>")
    parts.append("<dt>received</dt><dd>items in manifests acknowledged with "
                 f"{esc(', '.join(ARRIVED_STATUSES))}</dd>")
    parts.append(f"<dt>persons</dt><dd>{esc(', '.join(sorted(PERSON_CATEGORIES)))}</dd></dl>")
    parts.append('<p class="muted">An item counts once per side, peer and category (a manifest '
                 "item that names its roster record counts as that record), with the status of "
                 "its latest manifest entry (else its latest roster entry). Delivered: its "
                 "manifest reached the other bridge.</p></section>")
    parts.append(f"<footer>Bridge reconciliation report, {esc(report.generated)}. Generated "
                 "from signed acknowledgements; per-item receipts can be verified offline with "
                 "<code>bridge verify</code>.</footer>")
    parts.append("</main></body></html>\n")
    return "".join(parts)


RENDERERS = {"json": render_json, "csv": render_csv, "html": render_html}
FORMATS = ("text", "json", "csv", "html")


def render(report: Reconciliation, fmt: str, *, width: int = 120) -> str:
    if fmt == "text":
        return render_text(report, width=width)
    try:
        return RENDERERS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}") from None


__all__ = [
    "ARRIVED_STATUSES", "CONFIRMED", "DECLINED", "DISPUTED", "FORMATS", "GROUPS", "INBOUND",
    "OUTBOUND", "OUTSTANDING", "PERSON_CATEGORIES", "REASON_STATUSES", "STATUS_RULES",
    "UNCONFIRMED",
    "CategoryLine", "DocumentCount", "ItemCount", "ManifestLine", "ParityLine", "QuotaLine",
    "ReasonCount", "ReasonLine", "Reconciliation", "ReportFormatError", "SideReport",
    "StatusRule", "build_reconciliation", "from_json", "grouping_table", "parse_declared",
    "render", "render_csv", "render_html", "render_json", "render_text", "rule_of",
    "safe_text", "text_renderables", "to_json",
]
