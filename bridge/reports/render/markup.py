"""The page's markup helpers, shared by its sections (``html``, ``html_meeting``): every text
escaped on its way in."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from bridge.core.printable import printable


def esc(value: object) -> str:
    """Every text that reaches the page goes through here (element content and attributes):
    HTML-escaped, and control or bidi characters shown as escapes (a right-to-left override
    must not reorder what a reader sees)."""
    return html.escape(printable(value), quote=True)


def table(header: Sequence[tuple[str, str]], rows: Iterable[Sequence[tuple[str, str]]],
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


__all__ = ["esc", "table"]
