"""The audit trail between two real daemons: a manifest and two acknowledgements exchanged,
then ``bridge audit verify`` (daemon running, and stopped) holds; the SQLite file tampered with
directly (a record changed, one deleted, two swapped, the tail cut off) is caught and the
record named; ``bridge audit export`` gives a transcript that ``bridge verify`` accepts with the
two public identity files, and a tampered transcript fails with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forgeries import envelope_forgeries

from bridge.client import ApiError
from bridge.core import codec
from bridge.core.crypto.identity import Keyring
from bridge.core.transcript import TRANSCRIPT_LIMITS, build_transcript, check_transcript
from bridge.daemon.pair import Node, make_pair
from bridge.home.config import Delivery
from bridge.home.key_files import load_private, load_public
from bridge.store.sqlite import audit_db

from .conftest import person, wait_for

DELIVERY = Delivery(initial_backoff=0.05, max_backoff=0.5, request_timeout=30.0,
                    chunk_items=4)  # ten items travel in three envelopes


def bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Trail:
    root: Path
    alpha: Path  # the homes, daemons stopped
    beta: Path
    keys: tuple[Path, Path]  # alpha.pub, beta.pub
    verify_while_running: subprocess.CompletedProcess[str]


def _settled(node: Node, peer: str) -> bool:
    return bool(node.client.health()["peers"][peer]["queued"] == 0)


def _received(node: Node, doc_id: str) -> bool:
    try:
        return bool(node.client.document(doc_id, direction="in")["state"] == "received")
    except ApiError:  # not arrived yet
        return False


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    root = tmp_path_factory.mktemp("trail")
    alpha, beta = make_pair(root, delivery=DELIVERY)
    try:
        alpha.start()
        beta.start()
        alpha.client.submit_document("manifest", "beta", [person(n) for n in range(1, 11)],
                                     meta={"batch": 7}, id="M-AUDIT-1")
        wait_for(lambda: _received(beta, "M-AUDIT-1"), what="beta: M-AUDIT-1 received")
        beta.client.acknowledge("M-AUDIT-1", all="RECEIVED")
        beta.client.acknowledge("M-AUDIT-1", items=[
            {"id": "P-00003", "status": "DISPUTED", "reason": "tag differs"}])
        wait_for(lambda: [a["state"] for a in alpha.client.document("M-AUDIT-1")["acks"]]
                 == ["received", "received"], what="alpha: both acknowledgements")
        wait_for(lambda: _settled(alpha, "beta") and _settled(beta, "alpha"),
                 what="every envelope receipted")
        # Garbage from nowhere: refused, and the refusal recorded (with no peer to name).
        garbage = urllib.request.Request(
            f"{beta.url}/v1/envelopes", data=codec.encode({"x": 1}), method="POST",
            headers={"Content-Type": "application/vnd.bridge.envelope"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(garbage, timeout=30)
        assert refused.value.code == 400
        running = bridge("--home", alpha.home.path, "audit", "verify")
    finally:
        assert alpha.stop() == 0
        assert beta.stop() == 0
    keys = (root / "alpha.pub", root / "beta.pub")
    shutil.copy(alpha.home.public_key_path("alpha"), keys[0])
    shutil.copy(beta.home.public_key_path("beta"), keys[1])
    yield Trail(root=root, alpha=alpha.home.path, beta=beta.home.path, keys=keys,
                verify_while_running=running)


def copy_home(trail: Trail, name: str) -> Path:
    dst = trail.root / f"tampered-{name}"
    shutil.copytree(trail.alpha, dst)
    return dst


def tamper(home: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(home / "data" / "bridge.db", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for sql, args in statements:
            conn.execute(sql, args)
        conn.execute("COMMIT")
    finally:
        conn.close()


def records(home: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{home / 'data' / 'bridge.db'}?mode=ro", uri=True)
    try:
        return list(conn.execute("SELECT seq, kind FROM audit ORDER BY seq"))
    finally:
        conn.close()


# ---------------------------------------------------------------- the log holds


def test_audit_verify_holds_while_the_daemon_runs(trail: Trail) -> None:
    out = trail.verify_while_running
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK: ") and " records from " in out.stdout


def test_audit_verify_holds_after_stop_on_both_sides(trail: Trail) -> None:
    for home in (trail.alpha, trail.beta):
        out = bridge("--home", home, "audit", "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        n = len(records(home))
        assert out.stdout.startswith(f"OK: {home / 'data' / 'bridge.db'}: {n} records from ")
        assert "head " in out.stdout


def test_one_record_per_document_and_envelope_never_per_item(trail: Trail) -> None:
    kinds = [k for _, k in records(trail.alpha)]
    # keys: ours and beta's; the manifest and its 3 envelopes with 3 receipts; the two
    # acknowledgements, whose 3 + 1 envelopes came in with 4 receipts issued.
    assert kinds.count("key") == 2
    assert kinds.count("document") == 1 and kinds.count("ack") == 2
    assert kinds.count("envelope_queued") == 3 and kinds.count("receipt_received") == 3
    assert kinds.count("envelope_received") == 4 and kinds.count("receipt_issued") == 4
    assert len(kinds) == 19


def test_a_refusal_is_recorded_with_no_peer(trail: Trail) -> None:
    refusals = [r for r in records(trail.beta) if r[1] == "refusal"]
    assert len(refusals) == 1
    conn = sqlite3.connect(f"file:{trail.beta / 'data' / 'bridge.db'}?mode=ro", uri=True)
    try:
        peer, body = conn.execute("SELECT peer, body FROM audit WHERE seq = ?",
                                  (refusals[0][0],)).fetchone()
    finally:
        conn.close()
    assert peer is None
    assert codec.decode(body)["reason"] == "not_envelope"


def test_audit_verify_changes_nothing(trail: Trail) -> None:
    db = trail.beta / "data" / "bridge.db"
    before = hashlib.sha256(db.read_bytes()).digest()
    assert bridge("--home", trail.beta, "audit", "verify", "--json").returncode == 0
    assert hashlib.sha256(db.read_bytes()).digest() == before


# ---------------------------------------------------------------- the SQLite file tampered


def test_changed_record_is_named(trail: Trail) -> None:
    home = copy_home(trail, "changed")
    tamper(home, ("UPDATE audit SET body = ? WHERE seq = 5",
                  (codec.encode({"digest": bytes(32), "seq": 1}),)))
    out = bridge("--home", home, "audit", "verify")
    assert out.returncode == 1
    assert out.stdout.startswith("FAIL: ") and ": record 5 (" in out.stdout
    assert out.stdout.rstrip().endswith("[changed]")


def test_deleted_record_is_named(trail: Trail) -> None:
    home = copy_home(trail, "deleted")
    tamper(home, ("DELETE FROM audit WHERE seq = 6", ()))
    out = bridge("--home", home, "audit", "verify")
    assert out.returncode == 1
    assert "record 6 is missing: after record 5 comes record 7 [removed]" in out.stdout


def test_swapped_records_are_named(trail: Trail) -> None:
    home = copy_home(trail, "swapped")
    tamper(home, ("UPDATE audit SET seq = 1000 WHERE seq = 8", ()),
           ("UPDATE audit SET seq = 8 WHERE seq = 9", ()),
           ("UPDATE audit SET seq = 9 WHERE seq = 1000", ()))
    out = bridge("--home", home, "audit", "verify")
    assert out.returncode == 1
    assert "record 8: out of order: record 8 was written after the record now numbered 9" \
        in out.stdout
    assert out.stdout.rstrip().endswith("[reordered]")


def test_tail_cut_off_shows_against_the_store(trail: Trail) -> None:
    home = copy_home(trail, "cut")
    last = records(home)[-1][0]
    tamper(home, ("DELETE FROM audit WHERE seq = ?", (last,)))
    out = bridge("--home", home, "audit", "verify", "--json")
    assert out.returncode == 1
    assert '"reason": "store_mismatch"' in out.stdout
    assert (f"the log's tree has {last} leaves but the audit log {last - 1} records: "
            f"record {last} is missing (its tail cut off)") in out.stdout


def _cut_from(home: Path, seq: int, *, tree: bool) -> None:
    """The log cut back to end before record ``seq``; with ``tree``, the log's Merkle tree
    too (every subtree that holds one of the leaves cut: leaf i is record i + 1)."""
    statements: list[tuple[str, tuple[Any, ...]]] = [("DELETE FROM audit WHERE seq >= ?", (seq,))]
    if tree:
        statements.append(("DELETE FROM audit_tree WHERE ((idx + 1) << level) > ?", (seq - 1,)))
    tamper(home, *statements)


def test_operator_cuts_the_last_records_to_hide_a_receipt_issued(trail: Trail) -> None:
    home = copy_home(trail, "cut-receipt")
    issued = max(seq for seq, kind in records(home) if kind == "receipt_issued")
    _cut_from(home, issued, tree=False)
    out = bridge("--home", home, "audit", "verify")
    assert out.returncode == 1
    assert f"the log's tree has {len(records(trail.alpha))} leaves but the audit log " \
        f"{issued - 1} records" in out.stdout
    assert out.stdout.rstrip().endswith("(its tail cut off) [store_mismatch]")


def test_operator_cuts_the_last_records_and_their_tree_to_hide_a_receipt_issued(
        trail: Trail) -> None:
    """The tree cut to fit: the store's own rows (the inbox row keeps the receipt we issued,
    the acknowledgement its document row) still show that the log lacks their records."""
    home = copy_home(trail, "cut-receipt-tree")
    issued = max(seq for seq, kind in records(home) if kind == "receipt_issued")
    _cut_from(home, issued, tree=True)
    out = bridge("--home", home, "audit", "verify", "--json")
    assert out.returncode == 1
    assert '"reason": "store_mismatch"' in out.stdout
    assert "is in the store but not in the audit log" in out.stdout


def test_no_store_is_a_usage_error(tmp_path: Path) -> None:
    out = bridge("--home", tmp_path / "nowhere", "audit", "verify")
    assert out.returncode == 2 and "no store at" in out.stderr


# ---------------------------------------------------------------- transcripts


@pytest.fixture(scope="module")
def transcript(trail: Trail) -> Path:
    path = trail.root / "alpha-beta.transcript"
    out = bridge("--home", trail.alpha, "audit", "export", "--peer", "beta", "-o", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("wrote the transcript alpha↔beta to ")
    return path


def verify(trail: Trail, path: Path) -> subprocess.CompletedProcess[str]:
    return bridge("verify", path, "--keys", trail.keys[0], "--keys", trail.keys[1])


def test_exported_transcript_verifies_offline(trail: Trail, transcript: Path) -> None:
    out = verify(trail, transcript)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(
        f"OK: {transcript}: transcript alpha↔beta: 1 document, 2 acknowledgements, "
        "3 envelopes alpha→beta and 4 beta→alpha with signed receipts, from ")
    assert (transcript.stat().st_mode & 0o777) == 0o600


def test_the_streamed_export_is_the_transcript_built_whole_byte_for_byte(
        trail: Trail, transcript: Path) -> None:
    """``bridge audit export`` writes the transcript as it reads the store; the same store
    read whole into ``build_transcript`` (at the file's export time) makes the same bytes."""
    data = transcript.read_bytes()
    exported_at = codec.decode(data, TRANSCRIPT_LIMITS)["exported_at"]
    conn = audit_db.connect(trail.alpha / "data" / "bridge.db")
    with contextlib.closing(conn), audit_db.snapshot(conn):
        parts = audit_db.transcript_parts(conn, "beta", with_entries=True)
    assert [len(d.entries or ()) for d in parts.documents] == [10, 10, 1]
    assert build_transcript(parties=("alpha", "beta"), exported_at=exported_at,
                            documents=parts.documents, outbound=parts.outbound,
                            inbound=parts.inbound) == data


def test_forged_envelope_headers_in_an_exported_transcript_never_verify(
        trail: Trail, transcript: Path) -> None:
    """Each header field of each envelope of a transcript two daemons produced, changed (and
    re-signed with the exporter's own key where it can), fails: nothing in a header is
    taken on the exporter's word. Checked in process: hundreds of forgeries."""
    keys = Keyring.of(load_public(p) for p in trail.keys)
    own = load_private(trail.alpha / "keys" / "alpha.key")
    assert check_transcript(transcript.read_bytes(), keys).ok
    forgeries = envelope_forgeries(transcript.read_bytes(), keys, {"alpha": own})
    passed = [name for name, data in forgeries if check_transcript(data, keys).ok]
    assert len(forgeries) > 150 and passed == []


def test_peer_envelopes_whose_signature_was_not_kept_are_left_out_and_said(
        trail: Trail) -> None:
    """A store from before signatures were kept in the audit log: nothing could bind those
    envelopes' headers, so the transcript stops before them, and the export says so."""
    home = copy_home(trail, "unsigned-inbound")
    conn = sqlite3.connect(home / "data" / "bridge.db")
    with contextlib.closing(conn), conn:
        rows = conn.execute("SELECT seq, body FROM audit WHERE kind='envelope_received' "
                            "AND peer='beta'").fetchall()
        assert len(rows) == 4
        for seq, body in rows:
            value = codec.decode(body, codec.SMALL_LIMITS)
            del value["sig"], value["ct_hash"]
            conn.execute("UPDATE audit SET body=? WHERE seq=?", (codec.encode(value), seq))
    conn = audit_db.connect(home / "data" / "bridge.db")
    with contextlib.closing(conn), audit_db.snapshot(conn):
        parts = audit_db.transcript_parts(conn, "beta", with_entries=True)
    assert (parts.unbound, parts.inbound, len(parts.outbound)) == (4, [], 3)
    data = build_transcript(parties=("alpha", "beta"), exported_at=0, documents=parts.documents,
                            outbound=parts.outbound, inbound=parts.inbound)
    result = check_transcript(data, Keyring.of(load_public(p) for p in trail.keys))
    assert result.ok and result.envelopes == (3, 0), result.summary()
    assert len(result.undelivered) == 2  # the acknowledgements it carried


def test_the_other_side_exports_a_transcript_that_verifies(trail: Trail) -> None:
    path = trail.root / "beta-alpha.transcript"
    assert bridge("--home", trail.beta, "audit", "export", "--peer", "alpha", "-o", path,
                  "--without-entries").returncode == 0
    out = verify(trail, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "transcript beta↔alpha: 1 document, 2 acknowledgements, 4 envelopes beta→alpha " \
        "and 3 alpha→beta" in out.stdout
    assert "headers only" in out.stdout


def test_transcript_needs_both_keys(trail: Trail, transcript: Path) -> None:
    out = bridge("verify", transcript, "--keys", trail.keys[0])
    assert out.returncode == 1 and out.stdout.rstrip().endswith("[unknown_key]")


def _flip_receipt_byte(v: dict[str, Any]) -> None:
    e = v["links"][0]["envelopes"][1]
    e["receipt"] = e["receipt"][:-1] + bytes([e["receipt"][-1] ^ 0x01])


def _drop_envelope(v: dict[str, Any]) -> None:
    del v["links"][1]["envelopes"][1]


def _reorder_two(v: dict[str, Any]) -> None:
    envs = v["links"][0]["envelopes"]
    envs[0], envs[1] = envs[1], envs[0]


@pytest.mark.parametrize("attack,reason", [
    (_flip_receipt_byte, "bad_signature"),
    (_drop_envelope, "missing_envelope"),
    (_reorder_two, "envelope_order"),
], ids=["flipped-byte-in-receipt", "envelope-dropped", "two-envelopes-reordered"])
def test_tampered_transcript_fails(trail: Trail, transcript: Path,
                                   attack: Callable[[dict[str, Any]], None],
                                   reason: str) -> None:
    value = codec.decode(transcript.read_bytes(), TRANSCRIPT_LIMITS)
    attack(value)
    path = trail.root / f"tampered-{reason}.transcript"
    path.write_bytes(codec.encode(value))
    out = verify(trail, path)
    assert out.returncode == 1
    assert out.stdout.startswith(f"FAIL: {path}: ")
    assert out.stdout.rstrip().endswith(f"[{reason}]")


def test_export_for_an_unknown_peer_is_a_usage_error(trail: Trail) -> None:
    out = bridge("--home", trail.alpha, "audit", "export", "--peer", "gamma", "-o",
                 trail.root / "x.transcript")
    assert out.returncode == 2 and "no exchange with 'gamma'" in out.stderr


def test_export_refuses_a_broken_log(trail: Trail) -> None:
    home = copy_home(trail, "export-broken")
    tamper(home, ("DELETE FROM audit WHERE seq = 3", ()))
    out = bridge("--home", home, "audit", "export", "--peer", "beta", "-o",
                 trail.root / "never.transcript")
    assert out.returncode == 1 and "not exporting from a broken audit log" in out.stderr
    assert not (trail.root / "never.transcript").exists()
