"""``ack --file``: what the daemon refuses in the sheet (ids the document does not hold) is told
by row number, every bad row, as the importers tell theirs, never as ``items[1].id``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.daemon.pair import Node

from .conftest import EventLog, person


def test_every_unknown_id_in_an_ack_sheet_is_named_by_its_row(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    alpha.client.submit_document("manifest", "beta", [person(1), person(2)], id="M-1")
    events(beta).wait("document_received", id="M-1")
    sheet = tmp_path / "acks.csv"
    sheet.write_text("id,status,reason\nP-00001,RECEIVED,\n\nP-NOPE-1,RECEIVED,\n"
                     "P-00002,RECEIVED,\nP-NOPE-2,DISPUTED,tag\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bridge", "--home", str(beta.home.path), "ack",
                           "M-1", "--file", str(sheet)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "row 4" in done.stderr and "row 6" in done.stderr, done.stderr  # the blank row counts
    assert "items[" not in done.stderr
    assert "2 bad rows" in done.stderr
    assert beta.client.document("M-1")["items"]["acknowledged"] == 0  # nothing recorded
