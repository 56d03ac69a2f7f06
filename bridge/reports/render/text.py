"""The report for a terminal: rich tables, one per part of the report.

The only renderer that imports rich. Every text from data goes in through :func:`safe_text`
(fixed labels and numbers as plain ``Text``), so a category, id or reason can neither style,
link nor hide the output (PROTOCOL §10).
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bridge.core.printable import printable
from bridge.reports.model import Reconciliation, SideReport
from bridge.reports.render.wording import (
    CATEGORY_COLUMNS,
    category_label,
    declared_text,
    num,
    one_line,
    quota_source,
    scope,
    side_short,
    side_title,
    signed,
)
from bridge.reports.rules import ARRIVED_STATUSES, PERSON_CATEGORIES, grouping_summary


def safe_text(value: object, style: str = "") -> Text:
    """Data for a terminal: a ``Text`` (so never parsed as rich markup: ``[link=…]`` stays
    those characters) with every control, bidi or other non-printable character shown as its
    escape (so no ESC sequence, OSC 8 link or reordering reaches the terminal; PROTOCOL §10)."""
    return Text(printable(value), style=style)


def _titled_table(title: str) -> Table:
    return Table(title=Text(title), title_justify="left", box=None, pad_edge=False,
                 header_style="bold")


def _side_table(report: Reconciliation, s: SideReport) -> Table:
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
    return table


_MANIFEST_COLUMNS = (("Manifest", "left"), ("Side", "left"), ("Batch", "left"),
                     ("Declared", "right"), ("Entries", "right"), ("Acknowledged", "right"),
                     ("Received", "right"), ("Not received", "right"),
                     ("Undeclared", "right"), ("Difference", "right"))


def _manifest_table(report: Reconciliation) -> Table:
    table = _titled_table("Declared versus counted, per manifest")
    for label, justify in _MANIFEST_COLUMNS:
        if justify == "right":
            table.add_column(label.replace(" ", "\n"), justify="right", no_wrap=True)
        else:
            table.add_column(label, overflow="fold", min_width=20 if label == "Manifest"
                             else None)
    for m in report.manifests:
        diff = Text("n/a", style="dim") if m.difference is None else Text(
            signed(m.difference) + ("" if m.complete else " so far"),
            style="bold red" if m.difference else "green")
        table.add_row(safe_text(m.id), safe_text(side_short(m.side, m.peer)),
                      safe_text(m.batch or ""),
                      Text(declared_text(m)), Text(num(m.entries)),
                      Text(num(m.acknowledged)), Text(num(m.received)),
                      Text(num(m.not_received)), Text(num(m.undeclared)), diff)
    return table


def _parity_table(report: Reconciliation) -> Table:
    table = _titled_table("Parity (all-for-all): persons handed over through manifests")
    for label in ("Peer", f"{report.party} handed over", "received by peer",
                  "peer handed over", f"received by {report.party}", "Difference"):
        table.add_column(safe_text(label), justify="left" if label == "Peer" else "right")
    for p in report.parity:
        table.add_row(safe_text(p.peer), Text(num(p.handed_over)),
                      Text(num(p.received_by_peer)),
                      Text(num(p.peer_handed_over)), Text(num(p.received_by_us)),
                      Text(signed(p.difference),
                           style="bold red" if p.difference else "green"))
    return table


def _quota_table(report: Reconciliation) -> Table:
    table = _titled_table("Progress against quotas")
    for label in ("Quota of", "Side", "Peer", "Category", "Quota", "Progress", "%",
                  "Remaining"):
        table.add_column(label, justify="right" if label in (
            "Quota", "Progress", "%", "Remaining") else "left")
    for q in report.quotas:
        table.add_row(safe_text(quota_source(q)), safe_text(q.side), safe_text(q.peer),
                      safe_text(q.counts), Text(num(q.quota)),
                      Text(num(q.progress)), Text(f"{q.percent:.1f}"),
                      Text(num(q.remaining)))
    return table


def _reason_table(report: Reconciliation) -> Table:
    table = _titled_table("Reasons given")
    for label in ("Side", "Peer", "Status", "Items", "Reason"):
        table.add_column(label, justify="right" if label == "Items" else "left")
    for r in report.reasons:
        table.add_row(safe_text(r.side), safe_text(r.peer), safe_text(r.status),
                      Text(num(r.count)), safe_text(one_line(r.reason)))
    return table


def _legend() -> Table:
    legend = Table.grid(padding=(0, 2))
    legend.add_column(style="dim", no_wrap=True)
    legend.add_column(style="dim")
    for label, statuses in grouping_summary():
        legend.add_row(label, statuses)
    legend.add_row("received", "items in manifests acknowledged with "
                   + ", ".join(ARRIVED_STATUSES))
    legend.add_row("persons", ", ".join(sorted(PERSON_CATEGORIES)))
    return legend


def text_renderables(report: Reconciliation) -> list[RenderableType]:
    """Rich renderables for a terminal, each table after an empty line; a part with nothing
    in it (no manifests, no parity, ...) is left out."""
    out: list[RenderableType] = [
        safe_text(f"Reconciliation: {scope(report)}", style="bold")]
    for s in report.sides:
        out += [Text(""), _side_table(report, s)]
    for present, table in ((report.manifests, _manifest_table), (report.parity, _parity_table),
                           (report.quotas, _quota_table), (report.reasons, _reason_table)):
        if present:
            out += [Text(""), table(report)]
    out += [Text(""), Text("How statuses count", style="dim bold"), _legend(), Text("")]
    for note in report.notes:
        out.append(safe_text(f"note: {note}", style="yellow"))
    return out


def render_text(report: Reconciliation, *, width: int = 120, color: bool = False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color,
                      highlight=False, soft_wrap=False)
    console.print(Group(*text_renderables(report)))
    return buf.getvalue()
