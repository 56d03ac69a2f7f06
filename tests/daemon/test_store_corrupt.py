"""A store that lies: real SQLite files damaged by the test (a byte of an entry flipped, an
item's status changed, a page of the file overwritten) and a real daemon started on them.

What must hold (SECURITY.md, "A damaged store"): the daemon starts read-only with the
``store_corrupt`` alarm in health, /metrics and the event stream; what is damaged is answered
with a 500 ``store_corrupt`` (never the damaged data, never a 4xx that blames the caller, never
a receipt that fails ``bridge verify``); what is good can still be read; ``bridge audit verify``
says FAIL and names the document.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

from bridge.client import ApiError
from bridge.daemon.pair import ANY_PORT, Node, make_pair
from bridge.engine.check_mark import CheckMark
from bridge.home.folder import Home

from .conftest import FAST, EventLog, metric, person, wait_for

DOC = "M-STORE-1"
GOOD = "M-STORE-2"


@dataclass
class Exchanged:
    root: Path
    alpha: Node  # stopped; the homes are copied for each case
    beta: Node


def _bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def _received(node: Node, doc_id: str) -> bool:
    try:
        return bool(node.client.document(doc_id, direction="in")["state"] == "received")
    except ApiError:
        return False


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchanged]:
    """A manifest of five persons sent alpha → beta and acknowledged RECEIVED, and a second
    document (a manifest) that no case damages; both daemons stopped (the WAL checkpointed)."""
    root = tmp_path_factory.mktemp("st")
    alpha, beta = make_pair(root, delivery=FAST)
    try:
        alpha.start()
        beta.start()
        alpha.client.submit_document("manifest", "beta", [person(n) for n in range(1, 6)],
                                     id=DOC)
        alpha.client.submit_document("manifest", "beta", [person(n) for n in range(6, 9)],
                                     id=GOOD)
        wait_for(lambda: _received(beta, DOC) and _received(beta, GOOD), what="received")
        beta.client.acknowledge(DOC, all="RECEIVED")
        wait_for(lambda: [a["state"] for a in alpha.client.document(DOC)["acks"]]
                 == ["received"], what="alpha: the acknowledgement")
        wait_for(lambda: all(n.client.health()["peers"][p]["queued"] == 0
                             for n, p in ((alpha, "beta"), (beta, "alpha"))),
                 what="every envelope receipted")
    finally:
        alpha.stop()
        beta.stop()
    yield Exchanged(root=root, alpha=alpha, beta=beta)


def copy_of(node: Node, to: Path) -> Node:
    """The node's home copied to ``to``, listening on a port the kernel gives it (its peer is
    not started: every case speaks only to the local API)."""
    shutil.copytree(node.home.path, to, symlinks=True)
    home = Home(to)
    home.write_config(dataclasses.replace(home.config(), listen=ANY_PORT))
    return Node(home=home, party=node.party, log_path=to.parent / f"{to.name}.log")


@pytest.fixture
def damaged() -> Iterator[list[Node]]:
    """Daemons a case started, stopped at its end whatever happened."""
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


def sql(node: Node, statement: str, *args: object) -> None:
    con = sqlite3.connect(node.home.db_path)
    try:
        with con:
            con.execute(statement, args)
    finally:
        con.close()


def assert_store_corrupt(fn: object, *args: object, **kwargs: object) -> ApiError:
    assert callable(fn)
    with pytest.raises(ApiError) as err:
        fn(*args, **kwargs)
    assert (err.value.status, err.value.code) == (500, "store_corrupt"), err.value
    return err.value


def assert_alarm(node: Node, names: str) -> None:
    health = node.client.health()
    assert health["status"] == "store_corrupt", health
    assert health["store"]["ok"] is False
    assert any(names in f for f in health["store"]["faults"]), health["store"]
    assert metric(node, "store_corrupt") == 1
    log = EventLog(node)
    try:
        ev = log.wait("security_alarm", reason="store_corrupt")
        assert "detail" in ev.data
    finally:
        log.close()


def assert_audit_verify_fails(node: Node, names: str) -> None:
    out = _bridge("--home", node.home.path, "audit", "verify")
    assert out.returncode == 1, out
    assert out.stdout.startswith("FAIL: "), out.stdout
    assert names in out.stdout and "[store_corrupt]" in out.stdout, out.stdout


def _leaf(node: Node, item_id: str) -> bytes:
    con = sqlite3.connect(node.home.db_path)
    try:
        (leaf,), = con.execute("SELECT e.leaf FROM items i JOIN documents d ON d.rowid = i.doc "
                               "JOIN item_leaves e ON (e.doc, e.idx) = (i.doc, i.idx) "
                               "WHERE d.id=? AND i.item_id=?", (DOC, item_id)).fetchall()
        return bytes(leaf)
    finally:
        con.close()


@pytest.mark.parametrize("flip", ["surname", "encoding"])
def test_flipped_entry_byte_is_refused_as_a_store_fault_not_served(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node], flip: str) -> None:
    """One byte of a stored entry changed: in the surname (still a canonical entry: served the
    wrong surname, and a receipt that fails ``bridge verify``, before) or in its encoding (a
    400 "not canonical" before, blaming the caller)."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    leaf = _leaf(beta, "P-00002")
    if flip == "surname":
        bad = leaf.replace(b"Testname2", b"Testnamf2")
    else:
        at = leaf.index(b"\xa7surname")  # the fixstr key: make its length byte wrong
        bad = leaf[:at] + b"\xa8" + leaf[at + 1:]
    assert bad != leaf
    sql(beta, "UPDATE item_leaves SET leaf=? WHERE (doc, idx) = (SELECT doc, idx FROM items "
              "WHERE item_id='P-00002' AND doc=(SELECT rowid FROM documents WHERE id=?))",
        bad, DOC)
    beta.start()
    damaged.append(beta)
    assert_alarm(beta, DOC)
    c = beta.client
    assert_store_corrupt(c.item, DOC, "P-00002")
    assert_store_corrupt(c.items, DOC)
    assert_store_corrupt(c.receipt, DOC)
    assert_store_corrupt(c.receipt, DOC, item="P-00001")
    # Read-only: nothing new goes into a damaged store.
    assert_store_corrupt(c.submit_document, "manifest", "alpha", [person(99)], id="M-NEW")
    # What is good can still be read and exported.
    assert [i["data"]["surname"] for i in c.items(GOOD)["items"]] == [
        "Testname6", "Testname7", "Testname8"]
    assert c.document(GOOD)["state"] == "received"
    assert_audit_verify_fails(beta, DOC)


def test_item_status_changed_in_the_items_table_is_refused(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """RECEIVED → WITHHELD in the items table only (its signed history and the receipt still
    say RECEIVED): caught on the read while the daemon runs, and by the check at start."""
    alpha = copy_of(exchanged.alpha, tmp_path / "a")
    alpha.start()
    damaged.append(alpha)
    c = alpha.client
    assert c.health()["status"] == "ok"
    assert c.item(DOC, "P-00003")["status"] == "RECEIVED"
    sql(alpha, "UPDATE items SET status='WITHHELD' WHERE item_id='P-00003' AND doc=(SELECT "
               "rowid FROM documents WHERE id=?)", DOC)
    err = assert_store_corrupt(c.item, DOC, "P-00003")
    assert "P-00003" in err.message and "RECEIVED" in err.message
    assert_store_corrupt(c.items, DOC, status="WITHHELD")
    assert_store_corrupt(c.document, DOC)
    assert_store_corrupt(c.reconcile)
    assert_alarm(alpha, "P-00003")
    alpha.stop()
    damaged.clear()
    # Restarted: the check at start finds it before anything is served.
    alpha.start()
    damaged.append(alpha)
    assert_alarm(alpha, "P-00003")
    assert_store_corrupt(alpha.client.reconcile)
    assert_audit_verify_fails(alpha, DOC)


def test_receipt_from_a_store_damaged_while_running_is_verified_before_it_leaves(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """A byte of a stored acknowledgement entry (its salt: still a canonical entry) changed
    while the daemon runs, where no item read looks: the receipt built from it would fail
    ``bridge verify``, so it does not leave; 500 ``store_corrupt`` and the alarm instead."""
    alpha = copy_of(exchanged.alpha, tmp_path / "a")
    alpha.start()
    damaged.append(alpha)
    assert alpha.client.receipt(DOC, item="P-00004")
    con = sqlite3.connect(alpha.home.db_path)
    try:
        (leaf,), = con.execute(
            "SELECT a.leaf FROM ack_entries a JOIN documents d ON d.rowid = a.item_doc "
            "WHERE d.id=? AND a.item_id='P-00004'", (DOC,)).fetchall()
    finally:
        con.close()
    at = bytes(leaf).index(b"\xc4\x10") + 2  # the first byte of the 16-byte salt
    bad = leaf[:at] + bytes([leaf[at] ^ 1]) + leaf[at + 1:]
    sql(alpha, "UPDATE ack_entries SET leaf=? WHERE leaf=?", bad, leaf)
    err = assert_store_corrupt(alpha.client.receipt, DOC, item="P-00004")
    assert DOC in err.message and "does not verify" in err.message
    assert_store_corrupt(alpha.client.receipt, DOC)
    assert_alarm(alpha, DOC)


def _damage_first_page_of(node: Node, table: str) -> None:
    """Overwrite the start of ``table``'s first page in the file (its b-tree page header)."""
    con = sqlite3.connect(node.home.db_path)
    try:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        (root,), = con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,))
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        con.close()
    wal = Path(f"{node.home.db_path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # all of it is in the file
    with open(node.home.db_path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * 64)


def test_damaged_page_starts_the_daemon_with_the_alarm_not_ok(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """A page of the file overwritten at a known offset (the refusals table's first page,
    which nothing reads at start): the daemon starts with health "store_corrupt", not "ok",
    and /metrics still answers, with the alarm."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    _damage_first_page_of(beta, "refusals")
    beta.start()
    damaged.append(beta)
    # At start when the store has no mark of a complete check yet (the whole check runs
    # then); when the copied store has one, the page is not among what changed since, and the
    # whole check beside the work finds it moments later (SECURITY.md "A damaged store"):
    # which of the two depends on whether beta's own pass had finished when it was copied.
    wait_for(lambda: beta.client.health()["status"] == "store_corrupt",
             what="the alarm, at start or from the check beside the work")
    # The page itself is named by quick_check.
    wait_for(lambda: any(f.startswith("the file:")
                         for f in beta.client.health()["store"]["faults"]),
             what="quick_check naming the damaged page")
    assert metric(beta, "store_corrupt") == 1
    # An operator can still read what is good; nothing new is written.
    assert beta.client.document(DOC, direction="in")["state"] == "acknowledged"
    assert_store_corrupt(beta.client.acknowledge, GOOD, all="RECEIVED")
    assert_audit_verify_fails(beta, "the file")


def test_damaged_page_the_start_needs_refuses_the_start_saying_so(
        exchanged: Exchanged, tmp_path: Path) -> None:
    """The events table's first page damaged (read at start, to finish key changes): the
    daemon does not start, and says the store is damaged (not a traceback)."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    _damage_first_page_of(beta, "events")
    out = _bridge("--home", beta.home.path, "daemon")
    assert out.returncode != 0
    assert "damaged where the daemon reads it to start" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert_audit_verify_fails(beta, "the file")


def test_sound_store_passes_the_check(exchanged: Exchanged, tmp_path: Path,
                                      damaged: list[Node]) -> None:
    """The control: the same homes, undamaged, start "ok" and audit verify says OK."""
    for node, name in ((exchanged.alpha, "a"), (exchanged.beta, "b")):
        copy = copy_of(node, tmp_path / name)
        out = _bridge("--home", copy.home.path, "audit", "verify")
        assert out.returncode == 0 and out.stdout.startswith("OK: "), out
        copy.start()
        damaged.append(copy)
        assert copy.client.health()["status"] == "ok"
        assert metric(copy, "store_corrupt") == 0
        assert copy.client.receipt(DOC)
        copy.stop()
        damaged.clear()



def _mark_documents(node: Node) -> int:
    """How far the store check's mark says the store was found sound (-1: no mark)."""
    con = sqlite3.connect(f"{node.home.db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = con.execute("SELECT body FROM store_check_mark").fetchall()
    finally:
        con.close()
    return CheckMark.from_body(found[0][0]).documents if found else -1


def test_entry_changed_after_the_last_complete_check_is_caught_beside_the_work(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """The daemon ran until its whole check beside the work left a mark vouching for DOC;
    stopped, an entry of DOC is changed. The check at start reads only what came after the
    mark (it starts at once), the check beside the work finds the change: the alarm, and the
    store read-only."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    beta.start()
    damaged.append(beta)
    wait_for(lambda: _mark_documents(beta) >= 2, what="a mark vouching for both documents")
    beta.stop()
    damaged.clear()
    leaf = _leaf(beta, "P-00002")
    sql(beta, "UPDATE item_leaves SET leaf=? WHERE leaf=?",
        leaf.replace(b"Testname2", b"Testnamf2"), leaf)
    beta.start()
    damaged.append(beta)
    wait_for(lambda: beta.client.health()["status"] == "store_corrupt",
             what="the alarm from the check beside the work")
    assert_alarm(beta, DOC)
    assert_store_corrupt(beta.client.acknowledge, GOOD, all="RECEIVED")
    assert_audit_verify_fails(beta, DOC)


def test_whole_receipt_streamed_from_a_store_damaged_while_running_is_cut_short_no_file(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """An entry of DOC changed while the daemon runs (its surname: still a canonical entry,
    nothing read yet): the whole-document receipt's root is found not to hold as it is made
    (here before its first megabyte is out: a 500; for a larger one the body ends short), so
    ``bridge receipt`` keeps no file, and the alarm is up."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    beta.start()
    damaged.append(beta)
    good = tmp_path / "good.receipt"
    assert _bridge("--home", beta.home.path, "receipt", DOC, "-o", good).returncode == 0
    leaf = _leaf(beta, "P-00005")
    sql(beta, "UPDATE item_leaves SET leaf=? WHERE leaf=?",
        leaf.replace(b"Testname5", b"Testnamf5"), leaf)
    out = tmp_path / "cut.receipt"
    got = _bridge("--home", beta.home.path, "receipt", DOC, "-o", out)
    assert got.returncode != 0, got
    assert not out.exists() and not list(tmp_path.glob("cut.receipt*"))
    assert_alarm(beta, DOC)
    assert_store_corrupt(beta.client.receipt, DOC)


def _answers_per_spec(body: object, operation: str, path: str) -> None:
    """``body`` is valid as the 200 answer of ``operation`` in schemas/local-api.yaml."""
    spec = yaml.safe_load((Path(__file__).parents[2] / "schemas" / "local-api.yaml")
                          .read_text(encoding="utf-8"))
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(body, {**schema["schema"], "components": spec["components"]})
    assert spec["paths"][path]["get"]["operationId"] == operation


def test_entry_bytes_row_deleted_while_running_still_lists_every_item_and_names_it(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    """An item's entry bytes (its item_leaves row) deleted behind the daemon's back: the
    listing and the lookup used to lose the item (a page of four, "no item P-00003"), as if
    the document never declared it. Now it is listed with what its row holds, the fault named
    in the answer (valid per the spec) and in the alarm; then the document is refused as
    damaged, and the check at start and ``bridge audit verify`` name it too."""
    beta = copy_of(exchanged.beta, tmp_path / "b")
    beta.start()
    damaged.append(beta)
    c = beta.client
    assert len(c.items(DOC)["items"]) == 5
    sql(beta, "DELETE FROM item_leaves WHERE (doc, idx) = (SELECT doc, idx FROM items "
              "WHERE item_id='P-00003' AND doc=(SELECT rowid FROM documents WHERE id=?))", DOC)
    page = c.items(DOC)
    _answers_per_spec(page, "listItems", "/v1/documents/{id}/items")
    assert [i["id"] for i in page["items"]] == [f"P-{n:05d}" for n in range(1, 6)]
    (hit,) = [i for i in page["items"] if "fault" in i]
    assert hit["id"] == "P-00003" and hit["status"] == "RECEIVED" and "data" not in hit
    assert hit["fault"] == (f"in manifest {DOC} (alpha): entry 2 (P-00003): its signed bytes "
                            "are missing from the store")
    assert_alarm(beta, "entry 2 (P-00003): its signed bytes are missing")
    err = assert_store_corrupt(c.item, DOC, "P-00003")  # refused now, never "no such item"
    assert "P-00003" in err.message
    assert [i["data"]["surname"] for i in c.items(GOOD)["items"]] == [
        "Testname6", "Testname7", "Testname8"]
    beta.stop()
    damaged.clear()
    assert_audit_verify_fails(beta, DOC)


def test_entry_bytes_row_missing_the_lookup_shows_the_item_not_no_such_item(
        exchanged: Exchanged, tmp_path: Path, damaged: list[Node]) -> None:
    beta = copy_of(exchanged.beta, tmp_path / "b")
    beta.start()
    damaged.append(beta)
    c = beta.client
    assert c.item(DOC, "P-00004")["status"] == "RECEIVED"
    sql(beta, "DELETE FROM item_leaves WHERE (doc, idx) = (SELECT doc, idx FROM items "
              "WHERE item_id='P-00004' AND doc=(SELECT rowid FROM documents WHERE id=?))", DOC)
    item = c.item(DOC, "P-00004")
    _answers_per_spec(item, "getItem", "/v1/documents/{id}/items/{item_id}")
    assert item["declared"] is True and item["index"] == 3 and "data" not in item
    assert [h["status"] for h in item["history"]] == ["RECEIVED"]
    assert "entry 3 (P-00004): its signed bytes are missing from the store" in item["fault"]
    assert_alarm(beta, "P-00004")
