"""The mediator's witness with two real daemons (subprocesses): each party's audit log is
cosigned as the exchange goes; the witness killed with -9 mid-exchange loses nothing it
cosigned and the exchange does not wait for it (witnessing catches up); a party whose
database is rolled back to an earlier copy is refused (409) and raises the security alarm,
seen in /v1/events, /metrics and ``bridge status``, and ``witness log`` records the refusal."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from bridge.core.notes import note
from bridge.core.notes.cosignature import cosignature_verifier
from bridge.daemon.pair import Node
from bridge.home.key_files import load_public
from bridge.witness.home import key_name

from .conftest import metric, person, wait_for
from .witness_fixtures import verified_transcript


def bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def cosigned(node: Node) -> list[tuple[int, int, bytes]]:
    conn = sqlite3.connect(f"file:{node.home.db_path}?mode=ro", uri=True)
    try:
        return list(conn.execute("SELECT size, timestamp, line FROM cosignatures ORDER BY size"))
    finally:
        conn.close()


def tree_size(node: Node) -> int:
    conn = sqlite3.connect(f"file:{node.home.db_path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


def _exchange(alpha: Node, beta: Node, doc_id: str, n: int = 3) -> None:
    alpha.client.submit_document("manifest", "beta", [person(i) for i in range(1, n + 1)],
                                 id=doc_id)
    wait_for(lambda: _state(beta, doc_id) == "received", what=f"beta: {doc_id}")
    beta.client.acknowledge(doc_id, all="RECEIVED")
    wait_for(lambda: [a["state"] for a in alpha.client.document(doc_id)["acks"]] ==
             ["received"], what=f"alpha: the acknowledgement of {doc_id}")


def _state(node: Node, doc_id: str) -> str | None:
    try:
        return str(node.client.document(doc_id, direction="in")["state"])
    except Exception:  # not there yet
        return None


def _caught_up(node: Node) -> bool:
    rows = cosigned(node)
    return bool(rows) and rows[-1][0] == tree_size(node)


def test_both_logs_are_cosigned_and_the_cosignatures_verify(witnessed) -> None:  # type: ignore[no-untyped-def]
    alpha, beta, w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-W-1")
    for node in (alpha, beta):
        wait_for(lambda node=node: _caught_up(node), what=f"{node.party} witnessed")
    wid = load_public(w.identity_file)
    verifier = cosignature_verifier(key_name(wid), wid.note_key)
    conn = sqlite3.connect(f"file:{alpha.home.db_path}?mode=ro", uri=True)
    size, _ts, line = cosigned(alpha)[-1]
    (cp_note,) = conn.execute("SELECT note FROM checkpoints WHERE size=?", (size,)).fetchone()
    conn.close()
    note.open_note(cp_note + line, [verifier])
    doctor = bridge("--home", alpha.home.path, "doctor")
    assert "witness mediator: cosigned size" in doctor.stdout, doctor.stdout
    assert "s from the witness's" in doctor.stdout
    out = bridge("--home", w.home.path, "witness", "log", "--json")
    log = json.loads(out.stdout)
    assert {o["party"] for o in log["origins"]} == {"alpha", "beta"}
    assert any(r["status"] == 200 for r in log["requests"])


def test_witness_killed_mid_exchange_loses_nothing_and_catches_up(witnessed) -> None:  # type: ignore[no-untyped-def]
    alpha, beta, w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-W-2")
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed")
    before = cosigned(alpha)[-1][0]
    w.kill()  # kill -9, between two requests or in the middle of one
    _exchange(alpha, beta, "M-W-3")  # the exchange goes on without the witness
    assert tree_size(alpha) > before
    w.start()
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed again after the restart")
    out = json.loads(bridge("--home", w.home.path, "witness", "log", "--json").stdout)
    sizes = [r["size"] for r in out["requests"] if r["status"] == 200 and
             r["origin"].startswith("bridge.example/alpha/")]
    assert before in sizes and sizes == sorted(sizes)


def test_rolled_back_database_is_refused_and_the_alarm_is_loud(witnessed, events) -> None:  # type: ignore[no-untyped-def]
    alpha, beta, w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-W-4")
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed")
    alpha.stop()
    backup = alpha.home.db_path.with_name("backup.db")
    shutil.copy(alpha.home.db_path, backup)  # an early copy...
    alpha.start()
    _exchange(alpha, beta, "M-W-5")  # ...then more is logged and witnessed
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed beyond the copy")
    alpha.stop()
    for suffix in ("-wal", "-shm"):
        Path(str(alpha.home.db_path) + suffix).unlink(missing_ok=True)
    shutil.copy(backup, alpha.home.db_path)  # restored from the old copy
    log = events(alpha)
    alpha.start()
    alarm = log.wait("security_alarm", reason="witness_refused_rollback")
    assert "rolled back" in alarm.data["detail"]
    assert metric(alpha, "security_alarms") >= 1
    status = bridge("--home", alpha.home.path, "status")
    assert "witness_refused_rollback" in status.stdout + status.stderr
    doctor = bridge("--home", alpha.home.path, "doctor")
    assert doctor.returncode == 1 and "FAIL  witness: witness_refused_rollback" in doctor.stdout
    out = json.loads(bridge("--home", w.home.path, "witness", "log", "--json").stdout)
    assert any(r["status"] == 409 and r["origin"].startswith("bridge.example/alpha/")
               for r in out["requests"])


def _tamper_cosignature(data: bytes) -> bytes:
    """Flip one bit of the witness's signature in every witnessed checkpoint of a receipt."""
    from bridge.core import codec
    from bridge.core.receipts import RECEIPT_LIMITS

    bundle = codec.decode(data, RECEIPT_LIMITS)
    for entry in bundle["witnessed"]:
        text, sigs = entry["checkpoint"].split(b"\n\n", 1)
        lines = sigs.split(b"\n")
        name, blob = lines[-2].rsplit(b" ", 1)  # the last line: the witness's
        import base64

        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        lines[-2] = name + b" " + base64.b64encode(bytes(raw))
        entry["checkpoint"] = text + b"\n\n" + b"\n".join(lines)
    return codec.encode(bundle)


def test_witnessed_receipt_verifies_with_the_witness_and_a_forged_cosignature_fails(  # type: ignore[no-untyped-def]
        witnessed, tmp_path: Path) -> None:
    alpha, beta, w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-W-6")
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed")
    out = tmp_path / "receipt.bin"
    got = bridge("--home", alpha.home.path, "receipt", "M-W-6", "--item", "P-00002", "-o", out)
    assert got.returncode == 0, got.stderr
    keys = ["--keys", alpha.home.public_key_path("alpha"),
            "--keys", beta.home.public_key_path("beta")]
    plain = bridge("verify", out, *keys)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "the parties' own claims" in plain.stdout
    checked = bridge("verify", out, *keys, "--witness", w.identity_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert any(line.strip().startswith("acknowledgement ") and "logged by alpha no later "
               "than" in line and "(witnessed by mediator)" in line for line in lines), lines
    assert any(line.strip().startswith("document M-W-6: logged by alpha no later than")
               for line in lines), lines
    said = verified_transcript(alpha, "beta", tmp_path / "alpha-beta.transcript", keys,
                               w.identity_file)
    assert "document M-W-6: logged by alpha no later than" in said
    forged = tmp_path / "forged.bin"
    forged.write_bytes(_tamper_cosignature(out.read_bytes()))
    bad = bridge("verify", forged, *keys, "--witness", w.identity_file)
    assert bad.returncode == 1 and "[bad_cosignature]" in bad.stdout, bad.stdout


def test_a_witness_that_never_answers_does_not_hold_up_the_exchange(  # type: ignore[no-untyped-def]
        make_nodes, tmp_path: Path) -> None:
    import socket
    import threading

    from bridge.home.witnesses import pin_witness
    from bridge.witness.home import WitnessHome

    alpha, beta = make_nodes()
    home = WitnessHome(tmp_path / "silent")
    home.init("mediator")
    # A black hole: it accepts connections and reads, and never says a word.
    hole = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def swallow() -> None:
        hole.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = hole.accept()
            except TimeoutError:
                continue
            held.append(conn)

    t = threading.Thread(target=swallow, daemon=True)
    t.start()
    try:
        ident = home.public_identity()
        for node in (alpha, beta):
            pin_witness(node.home, home.public_path("mediator"),
                        url=f"http://127.0.0.1:{hole.getsockname()[1]}",
                        fingerprint=ident.fingerprint, interval_seconds=0.2)
        alpha.start()
        beta.start()
        _exchange(alpha, beta, "M-W-7")  # done while every submission hangs
        wait_for(lambda: held, what="a submission to the silent witness")  # it was asked
        assert cosigned(alpha) == []
    finally:
        stop.set()
        t.join(timeout=5)
        for c in held:
            c.close()
        hole.close()
