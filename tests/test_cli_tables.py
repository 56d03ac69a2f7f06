"""Tables never cut the ids and statuses a user has to type back (``alpha-m-…`` at 80
columns): those columns keep their whole width, and the other columns wrap to give way."""

from __future__ import annotations

import io

from rich.console import Console

from bridge.cli.output import table
from bridge.cli.status import _documents_table, _peers_table

LONG_ID = "alpha-manifest-18c2f3a4b5c-0123abcd"


def _render(tab: object, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, highlight=False, soft_wrap=False).print(tab)
    return out.getvalue()


def test_document_ids_are_whole_in_an_80_column_terminal() -> None:
    docs = [{"id": LONG_ID, "type": "manifest", "direction": "out", "peer": "beta-commission",
             "state": "partially_acknowledged",
             "items": {"total": 12000, "acknowledged": 11000,
                       "by_status": {"IDENTITY_CONFIRMED": 9000, "RECEIVED": 2000,
                                     "delivered": 1000}}}]
    text = _render(_documents_table(docs), 80)
    assert LONG_ID in text, text
    assert "…" not in text, text
    assert "IDENTITY_CONFIRMED" in text, text  # wrapped, not cut


def test_a_cell_that_cannot_fit_wraps_instead_of_being_cut() -> None:
    detail = "unreachable at 2026-03-02T15:00:00.000Z: " + "ClientConnectorError " * 6
    text = _render(_peers_table([{"name": "beta-commission", "reachable": False,
                                  "since": "2026-03-02T15:00:00.000Z", "queued": 3,
                                  "last_error": {"reason": "unreachable", "at": "x",
                                                 "detail": detail}}]), 80)
    assert "…" not in text and "beta-commission" in text, text


def test_the_status_column_of_items_is_kept_whole() -> None:
    tab = table(("#", "ID", "STATUS", "REASON"),
                [("1", "BAG-00000000000000027", "IDENTITY_CONFIRMED", "x " * 60)])
    text = _render(tab, 60)
    assert "BAG-00000000000000027" in text and "IDENTITY_CONFIRMED" in text, text
