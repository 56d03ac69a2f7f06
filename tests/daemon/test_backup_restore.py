"""``bridge backup`` of a running daemon and ``bridge restore``: the copy holds what the daemon
committed (the write-ahead log included), private keys only when asked, every file checked on
the way back, and a restored home does not start until its links are confirmed, so that an
older copy never reuses sequence numbers the peer has seen."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from bridge.daemon.pair import Node

from .conftest import EventLog, person, wait_for


def bridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True,
                          text=True, check=False, timeout=120)


def _exchange(alpha: Node, beta: Node, doc: str, beta_events: EventLog) -> None:
    alpha.client.submit_document("manifest", "beta", [person(1), person(2)], id=doc)
    beta_events.wait("document_received", id=doc)
    wait_for(lambda: alpha.client.document(doc)["state"] == "delivered", what=f"{doc} delivered")


def test_backup_of_a_running_daemon_restores_whole_and_checked(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-1", events(beta))

    archive = tmp_path / "alpha.bridge-backup"
    made = bridge("--home", str(alpha.home.path), "backup", "-o", str(archive))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert "alpha.key" in made.stdout  # said to be left out
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())  # type: ignore[union-attr]
    assert "data/bridge.db" in names and "bridge.toml" in names
    assert not any(n.endswith(".key") for n in names)
    assert manifest["links"]["beta"]["sent_seq"] >= 1

    restored = tmp_path / "restored"
    back = bridge("restore", str(archive), "--home", str(restored))
    assert back.returncode == 0, back.stdout + back.stderr
    assert "Store check: sound" in back.stdout and "No private key" in back.stdout
    # The online copy holds what the running daemon committed (a copy of bridge.db alone
    # may not: the pages are in its -wal).
    with sqlite3.connect(restored / "data" / "bridge.db") as con:
        assert con.execute("SELECT id FROM documents").fetchall() == [("M-1",)]

    # Not into a home that holds anything.
    again = bridge("restore", str(archive), "--home", str(restored))
    assert again.returncode != 0 and "not empty" in again.stderr

    # With the key, the restored home runs, once its links are confirmed.
    shutil.copy(alpha.home.private_key_path("alpha"), restored / "keys" / "alpha.key")
    (restored / "keys" / "alpha.key").chmod(0o600)
    refused = bridge("--home", str(restored), "daemon")
    assert refused.returncode != 0 and "restore --confirm beta=SEQ" in refused.stderr
    held = beta.client.peers()[0]["received_seq"]
    assert held == manifest["links"]["beta"]["sent_seq"]
    ok = bridge("--home", str(restored), "restore", "--confirm", f"beta={held}")
    assert ok.returncode == 0, ok.stderr
    assert not (restored / "restored.json").exists()


def test_restoring_an_older_backup_refuses_to_reuse_sequence_numbers(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    beta_events = events(beta)
    _exchange(alpha, beta, "M-1", beta_events)
    archive = tmp_path / "old.bridge-backup"
    assert bridge("--home", str(alpha.home.path), "backup", "-o", str(archive),
                  "--include-keys").returncode == 0
    _exchange(alpha, beta, "M-2", beta_events)  # after the backup: beta holds more

    restored = tmp_path / "restored"
    assert bridge("restore", str(archive), "--home", str(restored)).returncode == 0
    held = beta.client.peers()[0]["received_seq"]
    refused = bridge("--home", str(restored), "restore", "--confirm", f"beta={held}")
    assert refused.returncode != 0 and "fork" in refused.stderr
    assert (restored / "restored.json").exists()  # still refused to start
    assert "restore --confirm" in bridge("--home", str(restored), "daemon").stderr


def test_include_keys_warns_of_an_unsealed_key_and_a_tampered_archive_is_refused(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, _ = make_nodes()
    alpha.start()
    alpha.stop()  # no daemon running: a backup works all the same
    archive = tmp_path / "keys.bridge-backup"
    made = bridge("--home", str(alpha.home.path), "backup", "-o", str(archive), "--include-keys")
    assert made.returncode == 0, made.stderr
    assert "unencrypted" in made.stderr and "keys/alpha.key" in made.stderr

    # One byte of bridge.toml changed: the restore refuses and writes nothing.
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    bad = tmp_path / "bad.bridge-backup"
    with tarfile.open(bad, "w:gz") as tar:
        for member, data in members:
            if member.name == "bridge.toml":
                data = data.replace(b"alpha", b"alphb", 1)
            tar.addfile(member, io.BytesIO(data))
    target = tmp_path / "target"
    refused = bridge("restore", str(bad), "--home", str(target))
    assert refused.returncode != 0 and "bridge.toml" in refused.stderr
    assert not target.exists()
