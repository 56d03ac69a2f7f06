"""``bridge send roster FILE.csv`` sends the rows as it reads them (a stream the daemon checks
batch by batch), and keeps the import's contract: a bad row anywhere -- one that does not
convert here, or one the daemon refuses -- is named by its row and column, and nothing is
committed. A real daemon, a real socket, a file just past the size that is streamed."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.client import STREAM_FROM
from bridge.daemon.pair import Node

ROWS = STREAM_FROM + 500  # streamed, not sent as one JSON body
HEADER = ("id", "surname", "first_names", "rank", "date_of_birth", "service_number",
          "place_of_birth", "power_depended_on", "capture_date", "capture_place",
          "seriously_ill", "seriously_wounded", "consent_to_repatriation")


def write_roster(path: Path, bad: dict[int, tuple[str, str]] | None = None) -> None:
    """``ROWS`` synthetic prisoner-of-war rows (row 1 the header), a blank row and a row of
    spaces among them; ``bad`` puts a value into a field of a row (numbered as a spreadsheet
    numbers it)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        n = 1
        for i in range(ROWS):
            row = dict(zip(HEADER, (
                f"POW-{i:06d}", "Avenor", "Ari", "private", f"19{70 + i % 30}-0{1 + i % 9}-11",
                f"AL-{i:06d}", "Northvale", "Alpha", "2026-03-02", "Sector 9 (synthetic)",
                "no", "no", "yes"), strict=True))
            n += 1
            if bad and n in bad:
                field, value = bad[n]
                row[field] = value
            out.writerow(row.values())
            if i == 100:
                out.writerow(())  # not a record
                out.writerow(("  ",) * len(HEADER))  # nor this
                n += 2
        out.writerow(())


def send(node: Node, path: Path, doc_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), "send", "roster",
         str(path), "--category", "pow", "--to", "beta", "--id", doc_id],
        capture_output=True, text=True, timeout=300, check=False)


def test_csv_roster_streamed_is_committed_whole_with_every_row_and_no_blank_one(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, _ = make_nodes()
    alpha.start()
    path = tmp_path / "roster.csv"
    write_roster(path)
    done = send(alpha, path, "R-STREAM-1")
    assert done.returncode == 0, done.stderr
    assert f"{ROWS} items" in done.stderr
    assert alpha.client.document("R-STREAM-1")["items"]["total"] == ROWS


def test_csv_roster_with_a_cell_that_does_not_convert_far_down_is_cut_off_naming_its_row(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    """The first rows are already with the daemon when the bad one is read: the stream is cut
    off, the daemon drops what it staged, and the file's bad row is listed."""
    alpha, _ = make_nodes()
    alpha.start()
    path = tmp_path / "roster.csv"
    row = ROWS - 20
    write_roster(path, {row: ("seriously_ill", "perhaps")})
    done = send(alpha, path, "R-STREAM-2")
    assert done.returncode == 1, done.stderr
    assert f"row {row}, column K (seriously_ill)" in done.stderr, done.stderr
    assert "1 bad row" in done.stderr
    assert alpha.client.documents() == []


def test_csv_roster_with_a_row_the_daemon_refuses_far_down_names_its_row_commits_nothing(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, _ = make_nodes()
    alpha.start()
    path = tmp_path / "roster.csv"
    row = ROWS - 30
    write_roster(path, {row: ("date_of_birth", "1990-13-45")})
    done = send(alpha, path, "R-STREAM-3")
    assert done.returncode == 1, done.stderr
    assert f"row {row}" in done.stderr and "date_of_birth" in done.stderr, done.stderr
    assert alpha.client.documents() == []
