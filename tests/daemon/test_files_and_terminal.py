"""Files Bridge writes and text it prints, with two real daemons and the real ``bridge`` command
in a subprocess.

Findings of the second hardening round: exports were created 0644, overwrote existing files and
wrote through symbolic links (at the target, and at a guessable ``X.tmp``); the store's
``-wal`` and ``-shm`` files were 0644; and an acknowledgement reason holding terminal controls
(ESC, OSC 8) or rich markup reached ``bridge items``, ``status`` and ``reconcile`` as-is.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.client import ApiError
from bridge.daemon.pair import Node, make_pair

from .conftest import FAST, wait_for

DOC = "M-FILES-1"

# What a hostile peer puts in an acknowledgement: clear the screen, an OSC 8 hyperlink, rich
# markup that would link or hide text, a right-to-left override, a C1 CSI, a bell and a fake
# second output line.
CLEAR = "\x1b[2J"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"
HOSTILE_REASON = (f"{CLEAR}{OSC8} [link=https://evil.example/]here[/link] "
                  "[black on black]hidden[/black on black] \u202eevil\u202c \x9b31m \x07"
                  "\nOK: forged line")
HOSTILE_EVIDENCE = "[bold red]EV[/] \x1b[5;37;41mblink\x1b[0m"
# Raw sequences that must never reach the output (the escaped forms are shown instead).
RAW = ("\x1b[2J", "\x1b]8;", "\x1b[5;37;41m", "\u202e", "\x9b", "\x07")


def bridge(node: Node, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "250", **(env or {})})


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _received(node: Node, doc_id: str) -> bool:
    try:
        return node.client.document(doc_id, direction="in")["state"] == "received"
    except ApiError as err:
        if err.code != "not_found":
            raise
        return False


def exchange(alpha: Node, beta: Node) -> None:
    """alpha sends a manifest; beta (the hostile side) acknowledges with hostile text."""
    items = [{"id": f"BAG-{n}", "kind": "remains_package", "body_tag": f"BT-{n}"}
             for n in range(1, 4)]
    alpha.client.submit_document("manifest", "beta", items, id=DOC,
                                 meta={"category": "remains", "batch": 1, "declared": 3})
    wait_for(lambda: _received(beta, DOC), what="beta to receive the manifest")
    beta.client.acknowledge(DOC, items=[
        {"id": "BAG-1", "status": "DISPUTED", "reason": HOSTILE_REASON,
         "evidence": HOSTILE_EVIDENCE},
        {"id": "BAG-2", "status": "NOT_RECEIVED", "reason": "=HYPERLINK(\"https://evil\")"},
        {"id": "BAG-3", "status": "RECEIVED"}])
    wait_for(lambda: alpha.client.document(DOC, direction="out")["items"]["acknowledged"] == 3,
             what="beta's acknowledgement back at alpha")


def started(make_nodes: Callable[..., tuple[Node, Node]]) -> tuple[Node, Node]:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    exchange(alpha, beta)
    return alpha, beta


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """One pair after the hostile exchange, for the tests that only read it (each writes its
    outputs to its own folder and changes nothing in either home): started once, not once a
    test."""
    alpha, beta = make_pair(tmp_path_factory.mktemp("exchanged"), delivery=FAST)
    try:
        alpha.start()
        beta.start()
        exchange(alpha, beta)
        yield alpha, beta
    finally:
        for node in (alpha, beta):
            with contextlib.suppress(Exception):
                node.stop(timeout=10)
            node.kill()


@pytest.fixture
def shared(exchanged: tuple[Node, Node], request: pytest.FixtureRequest) -> Node:
    """Alpha of the shared pair; its daemons' logs go with a failure of the test."""
    request.node.bridge_nodes = list(exchanged)
    return exchanged[0]


def assert_no_raw_controls(text: str, what: str) -> None:
    for seq in RAW:
        assert seq not in text, f"{what} printed {seq!r} raw"


# ------------------------------------------------------------------ 13: files


def test_receipt_export_is_0600_never_overwrites_without_force_nor_follows_a_link(
        shared: Node, tmp_path: Path) -> None:
    alpha = shared
    out = tmp_path / "whole.receipt"
    done = bridge(alpha, "receipt", DOC, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert mode(out) == 0o600  # a whole-document receipt names every person on the list
    first = out.read_bytes()

    out.write_bytes(b"an earlier receipt")
    done = bridge(alpha, "receipt", DOC, "--item", "BAG-1", "-o", str(out))
    assert done.returncode == 1
    assert "already exists" in done.stderr and "--force" in done.stderr
    assert out.read_bytes() == b"an earlier receipt"  # changed nothing

    done = bridge(alpha, "receipt", DOC, "-o", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == first and mode(out) == 0o600

    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    victim.chmod(0o644)
    link = tmp_path / "link.receipt"
    link.symlink_to(victim)
    for extra in ((), ("--force",)):
        done = bridge(alpha, "receipt", DOC, "-o", str(link), *extra)
        assert done.returncode == 1, done.stdout
        assert "symbolic link" in done.stderr
        assert victim.read_text() == "not yours" and mode(victim) == 0o644
        assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_audit_export_does_not_write_through_a_planted_tmp_symlink(
        shared: Node, tmp_path: Path) -> None:
    alpha = shared
    out = tmp_path / "alpha-beta.transcript"
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    victim.chmod(0o644)
    (tmp_path / "alpha-beta.transcript.tmp").symlink_to(victim)  # the name once used

    done = bridge(alpha, "audit", "export", "--peer", "beta", "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert victim.read_text() == "not yours" and mode(victim) == 0o644
    assert mode(out) == 0o600 and not out.is_symlink()

    done = bridge(alpha, "audit", "export", "--peer", "beta", "-o", str(out))
    assert done.returncode == 2 and "--force" in done.stderr
    done = bridge(alpha, "audit", "export", "--peer", "beta", "-o", str(out), "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert mode(out) == 0o600


def test_reconcile_export_is_0600_and_refuses_an_existing_file_or_a_link(
        shared: Node, tmp_path: Path) -> None:
    alpha = shared
    for fmt in ("csv", "html", "json", "text"):
        out = tmp_path / f"report.{fmt}"
        done = bridge(alpha, "reconcile", "--format", fmt, "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert mode(out) == 0o600
        done = bridge(alpha, "reconcile", "--format", fmt, "-o", str(out))
        assert done.returncode == 1 and "--force" in done.stderr
        assert bridge(alpha, "reconcile", "--format", fmt, "-o", str(out),
                      "--force").returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    (tmp_path / "link.html").symlink_to(victim)
    done = bridge(alpha, "reconcile", "--format", "html", "-o", str(tmp_path / "link.html"),
                  "--force")
    assert done.returncode == 1 and "symbolic link" in done.stderr
    assert victim.read_text() == "not yours"


def test_store_wal_and_shm_files_are_0600_while_a_real_daemon_runs(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _ = started(make_nodes)
    data = alpha.home.db_path
    wal, shm = (data.with_name(data.name + s) for s in ("-wal", "-shm"))
    assert wal.exists() and shm.exists()  # the daemon is running: WAL mode
    assert (mode(data), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)

    # A store whose files an older version left 0644: tightened at the next start.
    alpha.kill()  # -wal and -shm stay behind
    for p in (data, wal, shm):
        if p.exists():
            p.chmod(0o644)
    alpha.start()
    assert all(mode(p) == 0o600 for p in (data, wal, shm) if p.exists())


def test_every_file_in_a_home_is_0600_after_an_exchange_and_a_key_rotation(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, beta = started(make_nodes)
    done = bridge(alpha, "keys", "rotate")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: any((beta.home.peers_dir / "history").glob("alpha-*.json")),
             what="beta to record alpha's rotation")
    loose = []
    for node in (alpha, beta):
        for path in node.home.path.rglob("*"):
            if path.is_socket():
                continue
            if path.is_file() and mode(path) != 0o600:
                loose.append(f"{path.relative_to(tmp_path)} {mode(path):04o}")
            if path.is_dir() and mode(path) != 0o700:
                loose.append(f"{path.relative_to(tmp_path)}/ {mode(path):04o}")
    assert loose == []


# ------------------------------------------------------------------ 14: terminal text


def test_hostile_ack_reason_reaches_items_status_and_reconcile_escaped(shared: Node) -> None:
    alpha = shared
    runs = {
        "items": bridge(alpha, "items", DOC),
        "status DOC": bridge(alpha, "status", DOC),
        "status": bridge(alpha, "status"),
        "reconcile": bridge(alpha, "reconcile"),
        # FORCE_COLOR: rich's terminal path (colour), as at a real terminal.
        "reconcile (terminal)": bridge(alpha, "reconcile", env={"FORCE_COLOR": "1"}),
        "items (terminal)": bridge(alpha, "items", DOC, env={"FORCE_COLOR": "1"}),
    }
    for what, done in runs.items():
        assert done.returncode == 0, f"{what}: {done.stderr}"
        assert_no_raw_controls(done.stdout + done.stderr, f"bridge {what}")
    for what in ("items", "reconcile"):
        out = runs[what].stdout
        assert "\\x1b[2J" in out, what  # shown, visibly, as what it is
        # Markup is text: the link target and the "hidden" words are on the screen.
        assert "[link=https://evil.example/]here[/link]" in out, what
        assert "[black on black]hidden[/black on black]" in out, what
        assert "\\u202eevil" in out, what
        assert "\nOK: forged line" not in out, what
    assert "[bold red]EV[/]" in runs["items"].stdout


def test_hostile_ack_reason_is_safe_in_json_csv_and_html_outputs(
        shared: Node, tmp_path: Path) -> None:
    alpha = shared
    receipt = tmp_path / "BAG-1.receipt"
    assert bridge(alpha, "receipt", DOC, "--item", "BAG-1", "-o", str(receipt)).returncode == 0
    keys = ("--keys", str(alpha.home.public_key_path("alpha")),
            "--keys", str(alpha.home.peers_dir / "beta.pub"))
    for extra in ((), ("--json",)):
        done = bridge(alpha, "verify", str(receipt), *keys, *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_no_raw_controls(done.stdout, f"bridge verify {' '.join(extra)}")
    items = bridge(alpha, "items", DOC, "--json")
    assert items.returncode == 0, items.stderr
    assert_no_raw_controls(items.stdout, "bridge items --json")
    # The same data, only written with \u escapes.
    reasons = {r["id"]: r.get("reason") for r in json.loads(items.stdout)["items"]}
    assert reasons["BAG-1"] == HOSTILE_REASON

    report = bridge(alpha, "reconcile", "--format", "json")
    assert report.returncode == 0, report.stderr
    assert_no_raw_controls(report.stdout, "bridge reconcile --format json")
    parsed = json.loads(report.stdout)
    assert any(r["reason"].startswith(CLEAR) for r in parsed["reasons"])

    html = bridge(alpha, "reconcile", "--format", "html")
    assert html.returncode == 0
    assert_no_raw_controls(html.stdout, "bridge reconcile --format html")
    assert "[link=https://evil.example/]" in html.stdout  # text, not markup
    assert "\\u202eevil" in html.stdout

    done = bridge(alpha, "reconcile", "--format", "csv")
    assert done.returncode == 0
    assert_no_raw_controls(done.stdout, "bridge reconcile --format csv")
    rows = list(csv.reader(io.StringIO(done.stdout)))
    reason_cells = [r["reason"] for r in csv.DictReader(io.StringIO(done.stdout))
                    if r["section"] == "reasons"]  # the long form: one header
    assert "'=HYPERLINK(\"https://evil\")" in reason_cells  # never a formula
    assert not any(c.startswith(("=", "+", "@")) for r in rows for c in r)
