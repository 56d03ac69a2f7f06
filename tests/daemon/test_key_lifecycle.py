"""Key rotation and revocation between two real daemons."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.client import ApiError
from bridge.core.crypto import suites
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.receipts import check_receipt
from bridge.daemon.pair import Node
from bridge.home.key_files import load_public
from bridge.home.keystore import KeyStore
from bridge.home.peers import pin_peer

from .conftest import EventLog, wait_for
from .conftest import exchange as _exchange


def _now_ms() -> int:
    """A time inside the window every signed time must fall in (PROTOCOL.md §3, Ranges)."""
    return int(datetime.now(UTC).timestamp() * 1000)


def test_rotation_is_accepted_and_old_receipts_still_verify(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    old_pub = alpha.home.public_identity()
    _exchange(alpha, beta, "M-BEFORE")
    before = alpha.client.receipt("M-BEFORE")
    beta_events = events(beta)

    out = alpha.client.rotate_key()
    assert out["old_fingerprint"] == old_pub.fingerprint != out["fingerprint"]
    beta_events.wait("peer_key_rotated", peer="alpha")
    assert beta.home.peer_identity("alpha").fingerprint == out["fingerprint"]
    assert beta.home.config().peers["alpha"].fingerprint == out["fingerprint"]

    # The exchange goes on under the new key, in both directions.
    _exchange(alpha, beta, "M-AFTER")
    after = alpha.client.receipt("M-AFTER")
    new_pub = alpha.home.public_identity()
    assert new_pub.fingerprint == out["fingerprint"]
    beta_pub = beta.home.public_identity()
    history = KeyStore(alpha.home).own_identities()
    assert [i.public.fingerprint for i in history] == [new_pub.fingerprint, old_pub.fingerprint]

    # Old receipts verify with the key history: old key + new key + peer.
    keys = Keyring.of([old_pub, new_pub, beta_pub])
    assert check_receipt(before, keys).ok
    assert check_receipt(after, keys).ok
    assert not check_receipt(before, Keyring.of([new_pub, beta_pub])).ok

    # Restarts load the rotated keys on both sides and carry on.
    alpha.stop()
    beta.stop()
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-RESTARTED")


def test_a_retired_key_cannot_sign_new_envelopes(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog]
        ) -> None:
    import urllib.request

    from bridge.core import envelope

    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    old = alpha.home.identity()
    alpha.client.rotate_key()
    events(beta).wait("peer_key_rotated", peer="alpha")
    # Someone holding the retired key seals the next envelope (seq 2: after the rotation at 1).
    env = envelope.seal(old, beta.home.public_identity(), message_id=b"\x01" * 16, seq=2,
                        prev=bytes(32), sent_at=_now_ms(), kind="chunk", payload=b"\x80")
    req = urllib.request.Request(f"{beta.url}/v1/envelopes", data=env.data, method="POST",
                                 headers={"Content-Type": "application/vnd.bridge.envelope"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 403
    assert beta.client.health()["status"] == "ok"
    assert _refused(beta)


def test_revocation_stops_trust_until_the_new_key_is_pinned_out_of_band(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    beta_events = events(beta)
    _exchange(alpha, beta, "M-OK")
    receipt = tmp_path / "M-OK.receipt"
    receipt.write_bytes(alpha.client.receipt("M-OK"))
    old_pub_file = tmp_path / "alpha-old.pub"
    old_pub_file.write_text(alpha.home.public_identity().dumps())
    # The key was compromised an hour ago: M-OK, signed since, can no longer be trusted.
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    out = alpha.client.revoke_key(since=an_hour_ago, reason="laptop lost at the crossing")
    alarm = beta_events.wait("security_alarm", peer="alpha")
    assert alarm.data["reason"] == "peer_key_revoked"

    # beta refuses to seal anything to alpha's revoked key...
    with pytest.raises(ApiError) as info:
        beta.client.submit_document("roster", "alpha", [{"id": "X-1"}], id="R-BLOCKED")
    assert info.value.code == "peer_key_revoked" and info.value.status == 409
    # ...and alpha's envelopes under its new key are refused until beta pins it.
    alpha.client.submit_document("manifest", "beta", [{"id": "N-1", "kind": "person"}],
                                 id="M-NEW")
    wait_for(lambda: any(e.data.get("reason") == "unauthenticated"
                         for e in beta_events.of_type("security_alarm"))
             or _refused(beta), what="refusal of the unpinned new key")
    assert not any(d["id"] == "M-NEW" for d in beta.client.documents(direction="in"))

    # Out of band: beta's operator compares the fingerprint and pins the new key.
    new_pub_file = alpha.home.public_key_path("alpha")
    assert load_public(new_pub_file).fingerprint == out["fingerprint"]
    subprocess.run([sys.executable, "-m", "bridge", "--home", str(beta.home.path), "peer", "add",
                    str(new_pub_file), "--url", alpha.url, "--fingerprint", out["fingerprint"],
                    "--replace"], check=True, capture_output=True)
    beta.client.reload_peers()
    wait_for(lambda: any(d["id"] == "M-NEW" for d in beta.client.documents(direction="in")),
             what="M-NEW delivered after the new key was pinned")
    _ = pin_peer  # the CLI above is the out-of-band step people take

    # Offline: with the revocation statement, the receipt signed after "since" fails.
    revocations = list((alpha.home.keys_dir / "history").glob("*.revocation"))
    assert len(revocations) == 1
    beta_pub = str(beta.home.public_key_path("beta"))
    verify = [sys.executable, "-m", "bridge", "verify", str(receipt), "--keys",
              str(old_pub_file), "--keys", beta_pub]
    assert subprocess.run(verify, capture_output=True, check=False).returncode == 0
    failed = subprocess.run([*verify, "--keys", str(revocations[0])], capture_output=True,
                            text=True, check=False)
    assert failed.returncode == 1 and "revoked_key" in failed.stdout


def _refused(node: Node) -> bool:
    import sqlite3

    with sqlite3.connect(node.home.db_path) as db:
        return db.execute("SELECT COUNT(*) FROM refusals WHERE reason='unauthenticated'"
                          ).fetchone()[0] > 0


def test_a_retry_after_the_peers_rotation_gets_a_receipt_under_its_new_key(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog]
        ) -> None:
    """A receipt lost in transit, then the receiver rotates: the sender's retry must still
    converge (the same statement, signed by the key the sender now trusts)."""
    import urllib.request

    from bridge.core import answers as transport
    from bridge.core import chunks, documents, envelope

    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    beta_key = beta.home.identity()
    alpha_old = alpha.home.public_identity()
    doc = documents.sign_document(
        beta_key, doc_type="roster", doc_id="R-LOST-RECEIPT", recipient="alpha", created=_now_ms(),
        meta={}, items=[documents.Item(id="X-1", data={})], salt_key=bytes(32))
    env = envelope.seal(beta_key, alpha_old, message_id=b"\x07" * 16, seq=1, prev=bytes(32),
                        sent_at=_now_ms(), kind="chunk", payload=chunks.split(doc, 8)[0].payload)

    def post() -> bytes:
        req = urllib.request.Request(
            f"{alpha.url}/v1/envelopes", data=env.data, method="POST",
            headers={"Content-Type": "application/vnd.bridge.envelope"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())

    first = transport.parse_answer(post(), alpha_old)  # "lost" on its way back to beta
    assert first.result == "accepted"
    alpha.client.rotate_key()
    events(beta).wait("peer_key_rotated", peer="alpha")
    alpha_new = beta.home.peer_identity("alpha")
    again = transport.parse_answer(post(), alpha_new)  # the retry, after the rotation
    transport.check_receipt_matches(again, digest=env.digest, seq=1, message_id=b"\x07" * 16)
    assert (again.result, again.at) == ("accepted", first.at)
    assert len([d for d in alpha.client.documents(direction="in")
                if d["id"] == "R-LOST-RECEIPT"]) == 1


# ---------------------------------------------------------------- hostile key statements


def _post(node: Node, data: bytes) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{node.url}/v1/envelopes", data=data, method="POST",
                                 headers={"Content-Type": "application/vnd.bridge.envelope"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, bytes(err.read())


def _raw_revocation(key: PrivateIdentity, *, since: int, at: int) -> bytes:
    """A revocation as a hostile peer makes it, without ``make_revocation``'s checks."""
    from bridge.core import codec, keylife
    from bridge.core.crypto.identity import TAG_KEY_REVOCATION

    r = codec.encode({"v": 1, "type": keylife.REVOCATION, "party": key.party, "key": key.key_id,
                      "since": since, "at": at, "reason": "x"})
    return codec.encode({"r": r, "sig": key.sign(TAG_KEY_REVOCATION, r)})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


class _Sender:
    """Seals envelopes for ``to`` as ``key`` would, keeping the chain (seq, prev)."""

    def __init__(self, key: PrivateIdentity, to: Node) -> None:
        self.key, self.to, self.seq, self.prev = key, to, 0, bytes(32)

    def send(self, kind: str, payload: bytes, *, seq: int | None = None,
             prev: bytes | None = None) -> tuple[int, bytes]:
        import time

        from bridge.core import envelope

        seq = self.seq + 1 if seq is None else seq
        env = envelope.seal(self.key, self.to.home.public_identity(),
                            message_id=bytes([seq % 256]) * 16, seq=seq,
                            prev=self.prev if prev is None else prev,
                            sent_at=int(time.time() * 1000), kind=kind, payload=payload)
        status, body = _post(self.to, env.data)
        if status == 200:
            self.seq, self.prev = seq, env.digest
        return status, body


def _answer(node: Node, body: bytes) -> Any:
    from bridge.core import answers as transport

    return transport.parse_answer(body, node.home.public_identity())


def test_peer_revocation_with_since_2_62_is_refused_and_changes_no_key_file(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    beta.start()
    before = _files(beta.home.peers_dir)
    thief = _Sender(alpha.home.identity(), beta)
    status, body = thief.send("key-revocation", _raw_revocation(thief.key, since=2**62,
                                                                 at=2**62))
    assert status == 200  # a signed answer, not a 500
    answer = _answer(beta, body)
    assert (answer.result, answer.reason) == ("refused", "bad_key_statement")
    assert _files(beta.home.peers_dir) == before
    # A thief's revocation "from 2099", made now: it would keep the stolen key trusted until
    # then, and block the owner's own revocation (PROTOCOL.md §4.5).
    import time

    now = int(time.time() * 1000)
    status, body = thief.send("key-revocation", _raw_revocation(
        thief.key, since=4_070_908_800_000, at=now))
    answer = _answer(beta, body)
    assert (status, answer.result, answer.reason) == (200, "refused", "bad_since")
    assert _files(beta.home.peers_dir) == before
    assert beta.client.health()["status"] == "ok"
    # alpha's key is still trusted: beta can still seal to it.
    beta.client.submit_document("roster", "alpha", [{"id": "X-1"}], id="R-STILL")


def test_owners_earlier_revocation_after_a_thiefs_still_takes_effect(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    import json
    import time

    alpha, beta = make_nodes()
    beta.start()
    key = alpha.home.identity()
    now = int(time.time() * 1000)
    # The thief revokes first, from now: beta stops trusting the key, at seq 1...
    thief = _Sender(key, beta)
    status, body = thief.send("key-revocation", _raw_revocation(key, since=now, at=now))
    assert status == 200 and _answer(beta, body).result == "accepted"
    # ...then the owner, knowing the key was exposed from its creation, sends its own at the
    # same place in its chain (seq 1), and again after it: neither can take a place in the
    # chain, but a revocation is honoured however it comes (PROTOCOL.md §4.5).
    owner = _Sender(key, beta)
    since = key.public.created
    owner.send("key-revocation", _raw_revocation(key, since=since, at=now + 1))
    [record] = (beta.home.peers_dir / "history").glob("alpha-*.json")
    assert json.loads(record.read_text())["revoked_since"] == since
    revocation = next((beta.home.peers_dir / "history").glob("alpha-*.revocation"))
    # The owner's statement is the one kept (compared by what is signed: a suite-2 signature
    # is hedged, so signing the same statement again gives other bytes).
    from bridge.core import codec, keylife

    kept = codec.decode(revocation.read_bytes())
    assert kept["r"] == codec.decode(_raw_revocation(key, since=since, at=now + 1))["r"]
    assert keylife.parse_revocation(revocation.read_bytes(), key.public).since == since
    assert beta.client.health()["status"] == "ok"


def test_rotation_flood_is_bounded_per_peer_per_day(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    import time

    from bridge.core import keylife

    alpha, beta = make_nodes()
    beta.start()
    key = alpha.home.identity()
    suite = suites.SUITES[key.public.suite]  # a rotation never moves down (§4.5)
    sender = _Sender(key, beta)
    results = []
    for n in range(keylife.MAX_ROTATIONS_PER_DAY + 1):
        now = int(time.time() * 1000)
        new = PrivateIdentity.generate("alpha", created=now, suite=suite)
        status, body = sender.send("key-rotation", keylife.make_rotation(sender.key, new,
                                                                          at=now))
        answer = _answer(beta, body)
        results.append((status, answer.result, answer.reason))
        if answer.result == "accepted":
            sender.key = new
    assert results[:-1] == [(200, "accepted", None)] * keylife.MAX_ROTATIONS_PER_DAY
    assert results[-1] == (200, "refused", "rotation_rate")
    assert beta.home.peer_identity("alpha").key_id == sender.key.key_id
    assert len(list((beta.home.peers_dir / "history").glob("alpha-*.json"))) == \
        keylife.MAX_ROTATIONS_PER_DAY
    # The limit holds across a restart (it is kept with the key history).
    beta.stop()
    beta.start()
    now = int(time.time() * 1000)
    status, body = sender.send("key-rotation", keylife.make_rotation(
        sender.key, PrivateIdentity.generate("alpha", created=now, suite=suite), at=now))
    assert (_answer(beta, body).result, _answer(beta, body).reason) == \
        ("refused", "rotation_rate")


def _cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--home", str(node.home.path), *args],
                          capture_output=True, text=True, check=False)


def test_audit_export_after_a_rotation_checks_its_own_transcript_with_the_key_history(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-BEFORE")
    alpha.client.rotate_key()
    events(beta).wait("peer_key_rotated", peer="alpha")
    _exchange(alpha, beta, "M-AFTER")
    for node, peer in ((alpha, "beta"), (beta, "alpha")):
        out = tmp_path / f"{node.party}.transcript"
        done = _cli(node, "audit", "export", "--peer", peer, "-o", str(out))
        assert done.returncode == 0, done.stdout + done.stderr

    # What a mediator is given: each party's current identity file and alpha's key history,
    # from alpha itself or from beta (which learnt it from alpha's signed rotation).
    own = tmp_path / "alpha-own.history"
    learnt = tmp_path / "alpha-learnt.history"
    assert _cli(alpha, "keys", "history", "-o", str(own)).returncode == 0
    assert _cli(beta, "keys", "history", "--peer", "alpha", "-o", str(learnt)).returncode == 0
    assert _cli(beta, "keys", "history", "--peer", "alpha", "-o", str(learnt)).returncode == 2
    mediator = [str(alpha.home.public_key_path("alpha")), str(beta.home.public_key_path("beta"))]
    receipt = tmp_path / "M-BEFORE.receipt"
    receipt.write_bytes(alpha.client.receipt("M-BEFORE"))
    files = [str(receipt), str(tmp_path / "alpha.transcript"), str(tmp_path / "beta.transcript")]
    for history in (own, learnt):
        keys = [a for f in (*mediator, str(history)) for a in ("--keys", f)]
        done = subprocess.run([sys.executable, "-m", "bridge", "verify", *files, *keys],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    # Without the history, the old receipt names a key the mediator was not given.
    keys = [a for f in mediator for a in ("--keys", f)]
    done = subprocess.run([sys.executable, "-m", "bridge", "verify", str(receipt), *keys],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "unknown_key" in done.stdout


def test_keys_revoke_since_9999_or_tomorrow_is_refused_with_a_clear_error(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = make_nodes()
    alpha.start()
    before = alpha.home.public_identity().key_id
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    for since in ("9999-12-31", "9999-12-31T23:59:59+00:00", tomorrow):
        with pytest.raises(ApiError) as info:
            alpha.client.revoke_key(since=since, reason="test")
        assert info.value.status == 400 and "since" in str(info.value), since
    done = _cli(alpha, "keys", "revoke", "--since", "9999-12-31")
    assert done.returncode == 1 and "since" in done.stderr
    assert alpha.client.health()["status"] == "ok"
    assert alpha.home.public_identity().key_id == before
