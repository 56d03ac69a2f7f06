"""A manifest from a spreadsheet carries its meta (batch, declared counts, deadline) from
``send --meta FILE`` and ``--set KEY=VALUE``: declared-versus-counted no longer needs JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.daemon.pair import Node

from .conftest import EventLog

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _send(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), "send", *args],
        capture_output=True, text=True, timeout=60, check=False)


def test_csv_manifest_carries_meta_from_file_and_flags(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    beta_events = events(beta)
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(json.dumps({"agreement": "AGR-TEST-9", "batch": 1,
                                     "declared": {"remains": 99}}))
    done = _send(alpha, "manifest", str(EXAMPLES / "manifest-remains.csv"), "--to", "beta",
                 "--id", "M-META-1", "--meta", str(meta_file), "--set", "batch=7",
                 "--set", 'declared={"remains": 12}', "--set", "transport=truck 4")
    assert done.returncode == 0, done.stderr
    beta_events.wait("document_received", id="M-META-1")
    assert beta.client.document("M-META-1")["meta"] == {
        "agreement": "AGR-TEST-9", "batch": 7, "declared": {"remains": 12},
        "transport": "truck 4"}


def test_bad_meta_options_are_usage_errors_that_send_nothing(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, _ = make_nodes()
    alpha.start()
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]")
    csv = str(EXAMPLES / "manifest-remains.csv")
    for args, said in ((["--set", "batch"], "is not KEY=VALUE"),
                       (["--meta", str(not_object)], "must hold a JSON object"),
                       (["--meta", str(tmp_path / "missing.json")], "cannot read"),
                       (["--set", "weight=7.5"], "meta.weight")):
        done = _send(alpha, "manifest", csv, "--to", "beta", *args)
        assert done.returncode != 0 and said in done.stderr, (args, done.stderr)
    assert alpha.client.documents() == []


def test_bad_csv_rows_refused_by_the_daemon_are_listed_by_row_and_nothing_is_committed(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    """The rows of a table are checked once, by the daemon: a bad one refuses the whole
    document there, and the command still lists every bad row by its row and field."""
    alpha, _ = make_nodes()
    alpha.start()
    done = _send(alpha, "roster", str(EXAMPLES / "roster-civilian_detainee-with-errors.csv"),
                 "--to", "beta", "--category", "civilian_detainee", "--id", "R-BAD-1")
    assert done.returncode == 1, done.stderr
    assert "bad rows; nothing was imported" in done.stderr and "row 3" in done.stderr
    assert alpha.client.documents() == []
    good = _send(alpha, "roster", str(EXAMPLES / "roster-civilian_detainee.csv"), "--to",
                 "beta", "--category", "civilian_detainee", "--id", "R-GOOD-1")
    assert good.returncode == 0, good.stderr
    assert [d["id"] for d in alpha.client.documents()] == ["R-GOOD-1"]
