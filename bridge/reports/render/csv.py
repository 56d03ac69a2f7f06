"""The report as CSV in long form: one header for the whole file, one row per figure (its
section, what it is about, the field and its value), so that a spreadsheet's filter or pivot
table, or any CSV reader, takes it as one table (sections with different headers stacked in
one file are not a CSV any reader takes)."""

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


# The columns that say what a figure is about; every other column of a section becomes rows
# of ``field`` and ``value``.
KEYS = ("side", "peer", "category", "document", "status", "reason", "source")
HEADER = ("section", *KEYS, "field", "value")


def render_csv(report: Reconciliation) -> str:
    """The report in long form (``HEADER``): one row per figure."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)

    def section(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        for row in rows:
            cells = dict(zip(header, row, strict=True))
            keys = [cells.get(k) for k in KEYS]
            for field, value in cells.items():
                if field not in KEYS:
                    w.writerow([name, *(_csv_cell(k) for k in keys), field, _csv_cell(value)])

    for name, header, rows in _sections(report):
        section(name, header, rows)
    return buf.getvalue()


def _sections(report: Reconciliation
              ) -> Iterable[tuple[str, Sequence[str], Iterable[Sequence[object]]]]:
    yield ("report", ["party", "peer", "generated", "quota"],
           [[report.party, report.peer or "all", report.generated, report.quota]])
    keys = ("items", *(k for k, _ in CATEGORY_COLUMNS))
    yield ("categories", ["side", "category", *keys], (
        [s.side, "TOTAL" if c is s.total else category_label(c.category),
         *(c.group(k) for k in keys)]
        for s in report.sides for c in (*s.categories, s.total)))
    yield ("manifests", ["side", "peer", "document", "created", "batch", "agreement",
                         "category", "declared", "entries", "acknowledged", "received",
                         "not_received", "unacknowledged", "undeclared", "counted",
                         "difference", "complete"],
           ([m.side, m.peer, m.id, m.created, m.batch, m.agreement, m.category,
             m.declared, m.entries, m.acknowledged, m.received, m.not_received,
             m.unacknowledged, m.undeclared, m.counted, m.difference,
             "yes" if m.complete else "no"] for m in report.manifests))
    yield ("parity", ["peer", "handed_over", "received_by_peer", "peer_handed_over",
                      "received_by_us", "difference"],
           ([p.peer, p.handed_over, p.received_by_peer, p.peer_handed_over,
             p.received_by_us, p.difference] for p in report.parity))
    yield ("quotas", ["source", "document", "side", "peer", "category", "quota", "progress",
                      "remaining", "percent"],
           ([q.source, q.document, q.side, q.peer, q.counts, q.quota, q.progress,
             q.remaining, f"{q.percent:.1f}"] for q in report.quotas))
    yield ("reasons", ["side", "peer", "status", "reason", "items"],
           ([r.side, r.peer, r.status, one_line(r.reason), r.count] for r in report.reasons))
    yield ("grouping", ["status", "group_persons", "group_other", "received"],
           ([r.status or "(no acknowledgement)", r.persons, r.other,
             "yes" if r.arrived else "no"] for r in STATUS_RULES))
