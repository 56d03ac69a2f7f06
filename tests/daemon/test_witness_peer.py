"""Each party's witnessed checkpoints reach its peer (PROTOCOL.md §13.7), with two real daemons
and a real witness (subprocesses): a consistent exchange leaves each side holding the other's
cosigned checkpoints and records, so alpha's receipt says when *beta* logged the manifest
and its acknowledgement, by the witness's clock; a checkpoint alpha signs for a log other
than the one it showed beta before is a split view: beta refuses it, raises the alarm where
operators look, and keeps both checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.core import audit_tree, peer_log
from bridge.core.notes.checkpoint import parse_checkpoint_text
from bridge.core.notes.note import open_note
from bridge.daemon.pair import Node
from bridge.engine.exchange import Exchange
from bridge.engine.kinds import KIND_CHECKPOINT
from bridge.engine.outbound import queue_envelope
from bridge.home.keystore import KeyStore
from bridge.store.sqlite.store import Store

from .conftest import db, metric, wait_for
from .test_witness import _caught_up, _exchange, bridge
from .witness_fixtures import verified_transcript


def _rows(node: Node, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = db(node)
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def peer_checkpoints(node: Node, peer: str) -> list[tuple[Any, ...]]:
    """(size, root, note, witnessed_by) of each checkpoint of ``peer``'s log kept."""
    return _rows(node, "SELECT size, root, note, witnessed_by FROM peer_checkpoints "
                 "WHERE peer=? ORDER BY size", peer)


def peer_records(node: Node, peer: str) -> list[tuple[Any, ...]]:
    return _rows(node, "SELECT idx, digest FROM peer_log_records WHERE peer=? ORDER BY idx",
                 peer)


def _digests(node: Node) -> set[bytes]:
    """The digests of every document and acknowledgement the node holds."""
    return {bytes(d) for (d,) in _rows(node, "SELECT digest FROM documents")}


def test_consistent_exchange_keeps_the_peers_checkpoints_and_the_receipt_has_its_time(  # type: ignore[no-untyped-def]
        witnessed, tmp_path: Path) -> None:
    alpha, beta, w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-P-1")
    want = _digests(alpha)  # the manifest and its acknowledgement
    assert len(want) == 2
    # beta's records of the manifest (received) and of its acknowledgement (sent), in
    # checkpoints of beta's log the mediator cosigned, reach alpha.
    wait_for(lambda: want <= {d for _, d in peer_records(alpha, "beta")},
             what="beta's records of M-P-1 and its acknowledgement at alpha")
    kept = peer_checkpoints(alpha, "beta")
    assert kept and all(by == "mediator" for *_, by in kept)
    beta_id = beta.home.public_identity()
    for size, root, note, _ in kept:  # each is beta's own signed note, as beta keeps it
        parsed = parse_checkpoint_text(open_note(note, [audit_tree.log_verifier(beta_id)])[0].text)
        assert (parsed.size, parsed.root) == (size, root)
    wait_for(lambda: peer_checkpoints(beta, "alpha"), what="alpha's checkpoints at beta")
    seen = alpha.client.health()["peer_logs"]["beta"]
    assert seen["witnessed_by"] == ["mediator"] and seen["split_views"] == 0, seen
    shown = json.loads(bridge("--home", alpha.home.path, "status", "--json").stdout)
    assert shown["peer_logs"]["beta"]["witnessed_by"] == ["mediator"], shown
    text = " ".join(bridge("--home", alpha.home.path, "status").stdout.split())  # unwrapped
    assert "log of beta: size" in text and "cosigned by mediator" in text, text
    out = tmp_path / "receipt.bin"
    got = bridge("--home", alpha.home.path, "receipt", "M-P-1", "--item", "P-00002", "-o", out)
    assert got.returncode == 0, got.stderr
    keys = ["--keys", alpha.home.public_key_path("alpha"),
            "--keys", beta.home.public_key_path("beta")]
    checked = bridge("verify", out, *keys, "--witness", w.identity_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = [line.strip() for line in checked.stdout.splitlines()]
    assert any(line.startswith("acknowledgement ") and "logged by beta no later than" in line
               and "(witnessed by mediator)" in line for line in lines), lines
    assert any(line.startswith("document M-P-1: logged by beta no later than") and
               "(witnessed by mediator)" in line for line in lines), lines
    assert any("logged by alpha no later than" in line for line in lines), lines
    said = verified_transcript(alpha, "beta", tmp_path / "alpha-beta.transcript", keys,
                               w.identity_file)
    assert "document M-P-1: logged by beta no later than" in said, said
    # The quiet link stays quiet: checkpoints go only with new documents and acknowledgements.
    for node in (alpha, beta):
        wait_for(lambda node=node: _caught_up(node), what=f"{node.party} witnessed")
    assert metric(beta, "security_alarms") == 0 and metric(alpha, "security_alarms") == 0


def _queue_forged_checkpoint(alpha: Node, size: int, root: bytes) -> None:
    """With alpha stopped: alpha's own engine queues, on its link to beta, a checkpoint of
    its log at ``size`` with ``root``, signed by alpha's real key (what a party showing two
    logs sends)."""
    home = alpha.home
    keystore = KeyStore(home)
    own = keystore.own_identities()
    ex = Exchange(store=Store(home.db_path), identity=own[0],
                  peers={"beta": home.peer_identity("beta")}, config=home.config(),
                  keystore=keystore, retired=own[1:])
    try:
        note = audit_tree.sign_log_checkpoint(own[0], size, root)
        payload = peer_log.encode(note, size, [], [])
        with ex.store.transaction():
            queue_envelope(ex.engine, "beta", ex.store.outbound_state("beta"),
                           kind=KIND_CHECKPOINT, payload=payload, sender=own[0], now=ex.now())
    finally:
        ex.store.close()


def test_checkpoint_of_another_log_signed_by_the_party_is_caught_as_a_split_view(  # type: ignore[no-untyped-def]
        witnessed, events, tmp_path: Path) -> None:
    alpha, beta, _w = witnessed
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-P-2")
    # The last checkpoint alpha sends, once beta keeps it (alpha cosigned to its log's end,
    # nothing left in its outbox): one taken while a later one is on its way would be
    # superseded, and the forgery below compared with that ("smaller than"), not with the
    # log of the same size it claims to be.
    wait_for(lambda: _caught_up(alpha) and metric(alpha, "queue_depth") == 0
             and peer_checkpoints(beta, "alpha"), what="alpha's last checkpoint at beta")
    size, root, stored_note, _ = peer_checkpoints(beta, "alpha")[-1]
    alpha.stop()
    other = bytes(b ^ 0xFF for b in root)
    _queue_forged_checkpoint(alpha, size, other)
    log = events(beta)
    alpha.start()
    alarm = log.wait("security_alarm", reason=peer_log.SPLIT_VIEW)
    assert alarm.data["peer"] == "alpha" and "another root" in alarm.data["detail"]
    conn = db(beta)
    try:
        (stored, offered), = conn.execute("SELECT stored_note, offered_note FROM "
                                          "peer_log_conflicts WHERE peer='alpha'")
    finally:
        conn.close()
    # Both checkpoints are kept, each verifying under alpha's key: evidence for anyone.
    alpha_id = alpha.home.public_identity()
    texts = {parse_checkpoint_text(open_note(n, [audit_tree.log_verifier(alpha_id)])[0].text)
             for n in (stored, offered)}
    assert {(t.size, t.root) for t in texts} == {(size, root), (size, other)}
    assert stored == stored_note
    assert peer_checkpoints(beta, "alpha")[-1][:2] == (size, root)  # the forgery is not kept
    assert metric(beta, "security_alarms") >= 1
    assert beta.client.health()["peer_logs"]["alpha"]["split_views"] == 1
    # The evidence, for whoever must judge it: both notes, out of the store.
    folder = tmp_path / "evidence"
    shown = bridge("--home", beta.home.path, "audit", "split-views", "--json", "-o", folder)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    (view,) = json.loads(shown.stdout)["split_views"]
    assert view["peer"] == "alpha" and view["reason"] == peer_log.SPLIT_VIEW
    written = sorted(folder.iterdir())
    assert [p.name for p in written] == ["split-view-1-kept.note", "split-view-1-offered.note"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in written)
    assert {p.read_bytes() for p in written} == {stored, offered}
    assert bridge("--home", alpha.home.path, "audit", "split-views").returncode == 0
    status = bridge("--home", beta.home.path, "status")
    assert peer_log.SPLIT_VIEW in status.stdout + status.stderr
    text = " ".join(status.stdout.split())  # as printed, unwrapped
    assert "log of alpha: size" in text and "1 split view(s) caught" in text, text
    doctor = bridge("--home", beta.home.path, "doctor")
    assert doctor.returncode == 1 and f"FAIL  witness: {peer_log.SPLIT_VIEW}" in doctor.stdout, \
        doctor.stdout
    # alpha is told, signed: its operator sees its peer caught the second log.
    wait_for(lambda: metric(alpha, "security_alarms") >= 1, what="alpha's alarm")
    # The link goes on: the refused envelope took its place in the chain.
    _exchange(alpha, beta, "M-P-3")
