"""The renderers of a reconciliation report, one module each, and the one dispatch by format
name that the CLI's ``--format`` offers. Only ``text`` imports rich, and only when asked for:
the engine reads ``render.json`` without loading a terminal library."""

from __future__ import annotations

from collections.abc import Callable

from bridge.reports.model import Reconciliation
from bridge.reports.render.csv import render_csv
from bridge.reports.render.html import render_html
from bridge.reports.render.json import render_json

FORMATS = ("text", "json", "csv", "html")
_RENDERERS: dict[str, Callable[[Reconciliation], str]] = {
    "json": render_json, "csv": render_csv, "html": render_html}


def render(report: Reconciliation, fmt: str, *, width: int = 120) -> str:
    if fmt == "text":
        from bridge.reports.render.text import render_text

        return render_text(report, width=width)
    try:
        return _RENDERERS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}") from None


__all__ = ["FORMATS", "render", "render_csv", "render_html", "render_json"]
