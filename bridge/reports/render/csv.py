"""The report as CSV: one file of several blocks that a spreadsheet shows as tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from bridge.core.printable import printable
from bridge.reports.model import Reconciliation
from bridge.reports.render.wording import CATEGORY_COLUMNS, category_label, one_line
from bridge.reports.rules import STATUS_RULES

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
          (["reasons", r.side, r.peer, r.status, one_line(r.reason), r.count]
           for r in report.reasons))
    block(["status", "group_persons", "group_other", "received"],
          (["grouping", r.status or "(no acknowledgement)", r.persons, r.other,
            "yes" if r.arrived else "no"] for r in STATUS_RULES))
    return buf.getvalue()
