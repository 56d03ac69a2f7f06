"""Building the reconciliation report from the store's grouped rows.

The store counts with grouped SQL, never item by item in Python; this module only adds those
counts up into a ``Reconciliation`` (``bridge.reports.model``) by the grouping table of
``bridge.reports.rules``. Pure: no I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bridge.core import times
from bridge.reports.model import (
    AttentionItem,
    CategoryLine,
    DocumentCount,
    ItemCount,
    ManifestLine,
    ParityLine,
    Provenance,
    QuotaLine,
    ReasonCount,
    ReasonLine,
    Reconciliation,
    SideReport,
)
from bridge.reports.rules import (
    GROUPS,
    INBOUND,
    NO_STATUS,
    OUTBOUND,
    PERSON_CATEGORIES,
    SIDE_OF_DIRECTION,
    SIDES,
    category_order,
    rule_of,
    status_order,
)

MAX_REASONS_PER_SIDE = 20
_TEXT_LIMIT = 120  # longest meta text shown (batch, agreement): enough, and a layout bound


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
    by_status = dict(sorted(acc.get("by_status", {}).items(), key=lambda kv: status_order(kv[0])))
    return CategoryLine(category=category, by_status=by_status,
                        **{k: int(v) for k, v in acc.items() if k != "by_status"})


# Parity and quotas count persons handed over through manifests, keyed (side, peer, category).
_Handovers = dict[tuple[str, str, str | None], int]


@dataclass(kw_only=True)
class _Tally:
    """What the build adds up as it reads the rows; it never leaves this module."""

    lines: dict[str, dict[str | None, dict[str, Any]]] = field(
        default_factory=lambda: {s: {} for s in SIDES})
    manifested: _Handovers = field(default_factory=lambda: defaultdict(int))
    arrived: _Handovers = field(default_factory=lambda: defaultdict(int))
    notes: list[str] = field(default_factory=list)

    def acc(self, side: str, category: str | None) -> dict[str, Any]:
        return self.lines[side].setdefault(category, {"by_status": {}})

    def persons(self, table: _Handovers, side: str, peer: str) -> int:
        return sum(v for (s, p, c), v in table.items()
                   if s == side and p == peer and c in PERSON_CATEGORIES)


# A document's quota: the document, its quota, and its manifest line (None for a roster).
_DocumentQuota = tuple[DocumentCount, int, ManifestLine | None]


def build_reconciliation(*, party: str, peer: str | None, generated: str,
                         items: Iterable[ItemCount], documents: Iterable[DocumentCount],
                         reasons: Iterable[ReasonCount] = (), quota: int | None = None,
                         peers: Sequence[str] = (), provenance: Provenance | None = None,
                         attention: tuple[Sequence[AttentionItem], int] = ((), 0)
                         ) -> Reconciliation:
    """The report from grouped counts. ``peers``: peers to show in the parity and agreement
    quota even with nothing exchanged yet (with a quota given). ``provenance`` gets the
    agreements the manifests name; ``attention``: the ids listed, and how many in all."""
    tally = _Tally()
    for row in items:
        _count_item(tally, row)
    manifest_lines: list[ManifestLine] = []
    doc_quotas: list[_DocumentQuota] = []
    for doc in documents:
        _count_document(tally, doc, manifest_lines, doc_quotas)
    sides = tuple(_side_report(side, tally.lines[side]) for side in SIDES)
    parity = _parity(tally, peer, (set(peers) if quota is not None else set()))
    quotas = (*_agreement_quotas(parity, quota), *_document_quotas(tally, doc_quotas))
    reason_lines = _reason_lines(reasons, tally.notes)
    manifest_lines.sort(key=lambda m: (SIDES.index(m.side), m.peer, m.created or "", m.id))
    if provenance is not None:
        named = sorted({m.agreement for m in manifest_lines if m.agreement})
        provenance = replace(provenance, agreements=tuple(named))
    return Reconciliation(party=party, peer=peer, generated=generated, quota=quota,
                          sides=sides, manifests=tuple(manifest_lines), parity=parity,
                          quotas=quotas, reasons=reason_lines, notes=tuple(tally.notes),
                          provenance=provenance, attention=tuple(attention[0]),
                          attention_total=attention[1])


def _count_item(tally: _Tally, row: ItemCount) -> None:
    side = SIDE_OF_DIRECTION[row.direction]
    rule = rule_of(row.status)
    acc = tally.acc(side, row.category)
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
        tally.manifested[(side, row.peer, row.category)] += n
        if rule.arrived:
            tally.arrived[(side, row.peer, row.category)] += n


def _count_document(tally: _Tally, doc: DocumentCount, manifest_lines: list[ManifestLine],
                    doc_quotas: list[_DocumentQuota]) -> None:
    side = SIDE_OF_DIRECTION[doc.direction]
    undeclared = sum(doc.undeclared.values())
    if undeclared:
        _add(tally.acc(side, _meta_category(doc.meta)), "undeclared", undeclared)
    mline = _manifest_line(doc, side, tally.notes) if doc.type == "manifest" else None
    if mline is not None:
        manifest_lines.append(mline)
    if "quota" in doc.meta:
        q = _count_value(doc.meta["quota"])
        if q is None or q == 0:
            tally.notes.append(f"{doc.type} {doc.id}: meta.quota is not a positive whole "
                               "number; ignored")
        else:
            doc_quotas.append((doc, q, mline))


def _side_report(side: str, lines: Mapping[str | None, Mapping[str, Any]]) -> SideReport:
    cats = tuple(_line(c, acc) for c, acc in sorted(lines.items(),
                                                   key=lambda kv: category_order(kv[0])))
    return SideReport(side=side, categories=cats, total=_total(cats))


def _parity(tally: _Tally, peer: str | None, quota_peers: set[str]) -> tuple[ParityLine, ...]:
    parity_peers = sorted({p for (_s, p, c) in tally.manifested if c in PERSON_CATEGORIES}
                          | quota_peers)
    if peer is not None:
        parity_peers = [p for p in parity_peers if p == peer]
    return tuple(ParityLine(
        peer=p, handed_over=tally.persons(tally.manifested, OUTBOUND, p),
        received_by_peer=tally.persons(tally.arrived, OUTBOUND, p),
        peer_handed_over=tally.persons(tally.manifested, INBOUND, p),
        received_by_us=tally.persons(tally.arrived, INBOUND, p)) for p in parity_peers)


def _agreement_quotas(parity: Sequence[ParityLine], quota: int | None) -> list[QuotaLine]:
    if quota is None:
        return []
    return [QuotaLine(source="agreement", document=None, side=side, peer=line.peer,
                      category=None, quota=quota, progress=progress)
            for line in parity
            for side, progress in ((OUTBOUND, line.received_by_peer),
                                   (INBOUND, line.received_by_us))]


def _document_quotas(tally: _Tally, doc_quotas: Sequence[_DocumentQuota]) -> list[QuotaLine]:
    out = []
    for doc, q, mline in doc_quotas:
        side = SIDE_OF_DIRECTION[doc.direction]
        category = _meta_category(doc.meta)
        if mline is not None:
            progress = mline.counted
        elif category is None:
            progress = tally.persons(tally.arrived, side, doc.peer)
        else:
            progress = tally.arrived.get((side, doc.peer, category), 0)
        out.append(QuotaLine(source=doc.type, document=doc.id, side=side, peer=doc.peer,
                             category=category, quota=q, progress=progress))
    return out


def _reason_lines(reasons: Iterable[ReasonCount], notes: list[str]) -> tuple[ReasonLine, ...]:
    out: list[ReasonLine] = []
    by_side: dict[str, list[ReasonCount]] = defaultdict(list)
    for r in reasons:
        by_side[SIDE_OF_DIRECTION[r.direction]].append(r)
    for side in SIDES:
        rows = sorted(by_side[side], key=lambda r: (-r.count, r.status, r.reason, r.peer))
        if len(rows) > MAX_REASONS_PER_SIDE:
            notes.append(f"{side}: the {MAX_REASONS_PER_SIDE} most frequent reasons of "
                         f"{len(rows)} are shown")
        out.extend(ReasonLine(side=side, peer=r.peer, status=r.status, reason=r.reason,
                              count=r.count) for r in rows[:MAX_REASONS_PER_SIDE])
    return tuple(out)


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
        by_status=dict(sorted(by_status.items(), key=lambda kv: status_order(kv[0]))))
