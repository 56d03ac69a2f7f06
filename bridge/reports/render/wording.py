"""Wording shared by the renderers: numbers, signed differences, titles and column labels, so
that the terminal, the page and the spreadsheet say the same thing in the same words."""

from __future__ import annotations

from bridge.reports.model import ManifestLine, QuotaLine, Reconciliation
from bridge.reports.rules import OUTBOUND


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


CATEGORY_COLUMNS = (("listed", "Listed"), ("manifested", "In manifests"),
                    ("delivered", "Delivered"), ("received", "Received"),
                    ("confirmed", "Confirmed"), ("unconfirmed", "Not confirmed"),
                    ("disputed", "Disputed"), ("declined", "Declined"),
                    ("outstanding", "Outstanding"), ("undeclared", "Undeclared"))


def side_short(side: str, peer: str) -> str:
    return f"out \u2192 {peer}" if side == OUTBOUND else f"in \u2190 {peer}"


def one_line(text: str) -> str:
    return " ".join(text.split())


def declared_text(m: ManifestLine) -> str:
    if m.declared is None:
        return "-"
    return num(m.declared)


def quota_source(q: QuotaLine) -> str:
    return "agreement (--quota)" if q.source == "agreement" else f"{q.source} {q.document}"

