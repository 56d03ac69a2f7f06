"""A store written before intake checked ranges may hold any time a peer chose: a document
``created`` in 2**62, a deadline of ``9999-12-31`` or one with a ``-14:00`` offset on that
day's last evening, an acknowledgement of our own manifest dated 2**62. Every read must still
answer (PROTOCOL.md §3 "Ranges": reads are total) and the deadline watcher must still raise a
real overdue document. Before, each of these made ``GET /v1/documents``, the item pages and
``/v1/reconcile`` answer 500 for good, ``bridge inbox`` exit 1, and the watcher fail on every
run."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bridge.daemon.pair import Node

from .conftest import EventLog, wait_for

FAR = 2**62  # fits SQLite's INTEGER; far past 9999-12-31


def _state(node: Node, doc_id: str, direction: str) -> str | None:
    for d in node.client.documents(direction=direction):
        if d["id"] == doc_id:
            return str(d["state"])
    return None


def _poison(node: Node) -> None:
    """What an older version could have stored from a hostile peer (the daemon is stopped)."""
    con = sqlite3.connect(node.home.db_path)
    try:
        with con:
            con.execute("UPDATE documents SET created=?, meta=? WHERE id='M-POISON-A'",
                        (FAR, json.dumps({"ack_deadline": "9999-12-31"})))
            con.execute("UPDATE documents SET meta=? WHERE id='M-POISON-B'",
                        (json.dumps({"ack_deadline": "9999-12-31T20:00:00-14:00"}),))
            con.execute("UPDATE documents SET created=? WHERE type='ack' AND direction='in'",
                        (FAR,))
    finally:
        con.close()


def test_stored_far_future_times_are_shown_and_the_deadline_watcher_still_runs(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes()
    # beta checks deadlines once at start, then not for an hour (until it is restarted).
    beta.home.write_config(dataclasses.replace(beta.home.config(),
                                               deadline_check_seconds=3600))
    alpha.start()
    beta.start()
    items = [{"id": f"P-{i}", "kind": "person"} for i in range(3)]
    for doc_id in ("M-POISON-A", "M-POISON-B"):
        alpha.client.submit_document("manifest", "beta", items, id=doc_id)
    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="seconds")
    alpha.client.submit_document("manifest", "beta", items, id="M-DUE",
                                 meta={"ack_deadline": due})
    beta.client.submit_document("manifest", "alpha", items, id="M-BETA")
    wait_for(lambda: _state(alpha, "M-BETA", "in") == "received", what="M-BETA at alpha")
    alpha.client.acknowledge("M-BETA", all="RECEIVED")
    wait_for(lambda: _state(beta, "M-BETA", "out") == "acknowledged", what="ack at beta")
    wait_for(lambda: _state(beta, "M-DUE", "in") == "received", what="M-DUE at beta")
    alpha.stop()
    beta.stop()
    _poison(beta)
    beta.home.write_config(dataclasses.replace(beta.home.config(), deadline_check_seconds=0.2))
    beta.start()
    log = events(beta)

    b = beta.client
    listed = {d["id"]: d for d in b.documents()}
    assert listed["M-POISON-A"]["created"] == "+146140482-04-24T15:36:27.904Z"
    assert "deadline" not in listed["M-POISON-A"]  # a deadline outside the window is ignored
    assert "deadline" not in listed["M-POISON-B"]
    assert b.document("M-BETA")["acks"][0]["created"].startswith("+146140482-")
    assert [i["id"] for i in b.items("M-POISON-A")["items"]] == ["P-0", "P-1", "P-2"]
    b.reconcile()
    inbox = subprocess.run([sys.executable, "-m", "bridge", "--home", str(beta.home.path),
                            "inbox"], capture_output=True, text=True, timeout=120, check=False,
                           env={**os.environ, "COLUMNS": "200"})
    assert inbox.returncode == 0, inbox.stderr
    assert "M-POISON-A" in inbox.stdout
    # The watcher runs past the poisoned documents and raises the real overdue one.
    assert log.wait("acknowledgement_overdue", id="M-DUE").data["overdue"] == 3
