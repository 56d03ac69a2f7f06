"""The report as JSON: what the local API answers to GET /v1/reconcile, and the reader that
turns that answer back into a report (the CLI renders from it). The shape is described in
``schemas/local-api.yaml`` (``Reconciliation``)."""

from __future__ import annotations

from typing import Any

from bridge.core.printable import json_text
from bridge.reports.model import (
    AttentionItem,
    CategoryLine,
    ManifestLine,
    ParityLine,
    Party,
    Provenance,
    QuotaLine,
    ReasonLine,
    Reconciliation,
    SideReport,
)
from bridge.reports.rules import GROUPS, PERSON_CATEGORIES, grouping_table

REPORT_KIND = "bridge.reconciliation"
REPORT_VERSION = 1


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
        **_provenance_json(report),
    }


def _provenance_json(report: Reconciliation) -> dict[str, Any]:
    p = report.provenance
    out: dict[str, Any] = {
        "attention": [{"direction": a.direction, "peer": a.peer, "document": a.document,
                       "id": a.id, "status": a.status} for a in report.attention],
        "attention_total": report.attention_total}
    if p is not None:
        out["provenance"] = {
            "parties": [{"name": x.name, "fingerprint": x.fingerprint} for x in p.parties],
            "audit_seq": p.audit_seq, "audit_head": p.audit_head,
            "agreements": list(p.agreements)}
    return out


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


def _ints(obj: Any, where: str, *names: str) -> dict[str, int]:
    return {n: int(_get(obj, n, int, where=where)) for n in names}


def _category_from(obj: Any, where: str) -> CategoryLine:
    return CategoryLine(category=_get(obj, "category", str, optional=True, where=where),
                        by_status=_counts(_get(obj, "by_status", dict, where=where), where),
                        **_ints(obj, where, "items", "listed", "manifested", "delivered",
                                "received", "undeclared", *GROUPS))


def _side_from(s: Any, where: str) -> SideReport:
    return SideReport(
        side=_get(s, "side", str, where=where),
        categories=tuple(_category_from(c, f"{where}.categories[{i}]")
                         for i, c in enumerate(_get(s, "categories", list, where=where))),
        total=_category_from(_get(s, "total", dict, where=where), f"{where}.total"))


def _manifest_from(m: Any, where: str) -> ManifestLine:
    def text(key: str) -> Any:
        return _get(m, key, str, optional=True, where=where)

    return ManifestLine(
        side=_get(m, "side", str, where=where), peer=_get(m, "peer", str, where=where),
        id=_get(m, "id", str, where=where), created=text("created"), batch=text("batch"),
        agreement=text("agreement"), category=text("category"),
        declared=_get(m, "declared", int, optional=True, where=where),
        declared_detail=tuple(sorted(_counts(_get(m, "declared_detail", dict, where=where),
                                             where).items())),
        by_status=_counts(_get(m, "by_status", dict, where=where), where),
        **_ints(m, where, "entries", "acknowledged", "received", "not_received",
                "unacknowledged", "undeclared"))


def _parity_from(p: Any, where: str) -> ParityLine:
    return ParityLine(peer=_get(p, "peer", str, where=where),
                      **_ints(p, where, "handed_over", "received_by_peer", "peer_handed_over",
                              "received_by_us"))


def _quota_from(q: Any, where: str) -> QuotaLine:
    return QuotaLine(
        source=_get(q, "source", str, where=where),
        document=_get(q, "document", str, optional=True, where=where),
        side=_get(q, "side", str, where=where), peer=_get(q, "peer", str, where=where),
        category=_get(q, "category", str, optional=True, where=where),
        **_ints(q, where, "quota", "progress"))


def _reason_from(r: Any, where: str) -> ReasonLine:
    return ReasonLine(
        side=_get(r, "side", str, where=where), peer=_get(r, "peer", str, where=where),
        status=_get(r, "status", str, where=where), reason=_get(r, "reason", str, where=where),
        count=_get(r, "count", int, where=where))


def _provenance_from(data: Any) -> Provenance | None:
    """Absent from an older daemon's report: None."""
    if not isinstance(data, dict) or data.get("provenance") is None:
        return None
    p, where = data["provenance"], "$.provenance"
    return Provenance(
        parties=tuple(Party(name=_get(x, "name", str, where=f"{where}.parties[{i}]"),
                            fingerprint=_get(x, "fingerprint", str, where=f"{where}.parties"))
                      for i, x in enumerate(_get(p, "parties", list, where=where))),
        audit_seq=_get(p, "audit_seq", int, where=where),
        audit_head=_get(p, "audit_head", str, optional=True, where=where),
        agreements=tuple(str(a) for a in _get(p, "agreements", list, where=where)))


def _attention_from(a: Any, where: str) -> AttentionItem:
    return AttentionItem(
        direction=_get(a, "direction", str, where=where), peer=_get(a, "peer", str, where=where),
        document=_get(a, "document", str, where=where), id=_get(a, "id", str, where=where),
        status=_get(a, "status", str, optional=True, where=where))


def from_json(data: Any) -> Reconciliation:
    """The report back from ``to_json`` data (what the CLI renders from the API's answer)."""
    if _get(data, "kind", str) != REPORT_KIND or _get(data, "version", int) != REPORT_VERSION:
        raise ReportFormatError(f"not a {REPORT_KIND} report of version {REPORT_VERSION}")

    def each(key: str, read: Any) -> tuple[Any, ...]:
        return tuple(read(v, f"$.{key}[{n}]") for n, v in enumerate(_get(data, key, list)))

    # The parts first, then the heading fields: the first fault found is the one named.
    sides, manifests = each("sides", _side_from), each("manifests", _manifest_from)
    parity, quotas = each("parity", _parity_from), each("quotas", _quota_from)
    reasons = each("reasons", _reason_from)
    notes = tuple(str(x) for x in _get(data, "notes", list))
    return Reconciliation(
        party=_get(data, "party", str), peer=_get(data, "peer", str, optional=True),
        generated=_get(data, "generated", str), quota=_get(data, "quota", int, optional=True),
        sides=sides, manifests=manifests, parity=parity, quotas=quotas, reasons=reasons,
        notes=notes, provenance=_provenance_from(data),
        attention=tuple(_attention_from(a, f"$.attention[{n}]")
                        for n, a in enumerate(_get(data, "attention", list, optional=True)
                                              or [])),
        attention_total=_get(data, "attention_total", int, optional=True) or 0)
