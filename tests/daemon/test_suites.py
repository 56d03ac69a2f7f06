"""Key suites between two real daemons: a suite-1 party and a suite-2 party exchange both
ways (each direction sealed in its recipient's suite), a suite-1 party moves to suite 2 with
``bridge keys rotate --suite 2`` while both run, and its old receipts still verify with the key
history (PROTOCOL.md §3.1, §4.5, §5.2)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.core import envelope
from bridge.core.crypto import suites
from bridge.core.crypto.identity import Keyring
from bridge.core.receipts import check_receipt
from bridge.daemon.pair import Node
from bridge.home.keystore import KeyStore

from .conftest import EventLog
from .conftest import exchange as acknowledged

BRIDGE = Path(sys.executable).parent / "bridge"


def exchange(sender: Node, recipient: Node, doc_id: str) -> bytes:
    """One manifest from ``sender``, acknowledged by ``recipient``; the sender's receipt."""
    acknowledged(sender, recipient, doc_id)
    return sender.client.receipt(doc_id)


def suites_received(node: Node) -> set[tuple[int, ...]]:
    """The suites of the envelope headers ``node`` stored as received."""
    with sqlite3.connect(node.home.db_path) as conn:
        rows = conn.execute("SELECT header FROM inbox").fetchall()
    return {envelope.EnvelopeHeader.from_bytes(bytes(r[0])).suite for r in rows}


def test_suite_1_and_suite_2_daemons_exchange_both_ways(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes(suites=(1, 2))
    alpha.start()
    beta.start()
    assert alpha.home.public_identity().suite == suites.SUITE_1.id
    assert beta.home.public_identity().suite == suites.SUITE_2.id
    to_beta = exchange(alpha, beta, "M-1-TO-2")
    to_alpha = exchange(beta, alpha, "M-2-TO-1")
    keys = Keyring.of([alpha.home.public_identity(), beta.home.public_identity()])
    assert check_receipt(to_beta, keys).ok and check_receipt(to_alpha, keys).ok
    # Each side received only envelopes in its own suite.
    assert suites_received(beta) == {suites.SUITE_2.id}
    assert suites_received(alpha) == {suites.SUITE_1.id}


def test_rotate_to_suite_2_between_running_daemons_and_old_receipts_verify(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        tmp_path: Path) -> None:
    alpha, beta = make_nodes(suites=(1, 1))
    alpha.start()
    beta.start()
    old_pub = alpha.home.public_identity()
    before = exchange(alpha, beta, "M-BEFORE")
    beta_events = events(beta)

    result = subprocess.run([str(BRIDGE), "--home", str(alpha.home.path), "keys", "rotate",
                             "--suite", "2", "--json"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["suite"] == 2 and out["old_fingerprint"] == old_pub.fingerprint
    beta_events.wait("peer_key_rotated", peer="alpha")
    assert beta.home.peer_identity("alpha").suite == suites.SUITE_2.id

    after = exchange(alpha, beta, "M-AFTER")
    back = exchange(beta, alpha, "M-BACK")
    new_pub = alpha.home.public_identity()
    assert new_pub.suite == suites.SUITE_2.id and new_pub.fingerprint == out["fingerprint"]
    # beta (still suite 1) now seals to alpha in suite 2; alpha seals to beta in suite 1.
    assert suites.SUITE_2.id in suites_received(alpha)
    assert suites_received(beta) == {suites.SUITE_1.id}

    # The old receipt verifies with the key history that bridge keys history exports.
    history = tmp_path / "alpha.history"
    exported = subprocess.run([str(BRIDGE), "--home", str(alpha.home.path), "keys", "history",
                               "-o", str(history)], capture_output=True, text=True, timeout=60,
                              check=False)
    assert exported.returncode == 0, exported.stderr
    beta_pub = beta.home.public_identity()
    for receipt in (before, after):
        path = tmp_path / "r.receipt"
        path.write_bytes(receipt)
        checked = subprocess.run(
            [str(BRIDGE), "verify", str(path), "--keys",
             str(alpha.home.public_key_path("alpha")), "--keys", str(history), "--keys",
             str(beta.home.public_key_path("beta"))],
            capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert check_receipt(back, Keyring.of([new_pub, beta_pub])).ok
    assert [i.public.suite for i in KeyStore(alpha.home).own_identities()] == [
        suites.SUITE_2.id, suites.SUITE_1.id]

    # And it never moves back: a rotation to suite 1 is refused by name.
    down = subprocess.run([str(BRIDGE), "--home", str(alpha.home.path), "keys", "rotate",
                           "--suite", "1"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert down.returncode != 0 and "never moves down" in down.stderr


def test_suite_1_envelope_claiming_a_suite_2_pinned_sender_is_refused_by_a_running_daemon(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    """beta (suite 1) has pinned alpha's suite-2 identity. An envelope sealed to beta in suite
    1 and signed the suite-1 way by alpha's Ed25519 key alone (what a forger of Ed25519 can
    make) is rejected as ``suite_downgrade``; the same envelope with alpha's hybrid signature
    is authenticated."""
    import http.client
    import os
    import time

    import nacl.signing

    from bridge.core import answers, codec
    from bridge.core.crypto.identity import TAG_ENVELOPE, signed_message

    alpha, beta = make_nodes(suites=(2, 1))
    beta.start()
    alpha_key = alpha.home.identity()
    sealed = envelope.seal(alpha_key, alpha.home.peer_identity("beta"),
                           message_id=os.urandom(16), seq=1, prev=envelope.ZERO_HASH,
                           sent_at=int(time.time() * 1000), kind="test", payload=b"test")
    _, header_bytes, ciphertext, _ = envelope.parse(sealed.data)
    body = envelope.signed_body(header_bytes, suites.sha256(ciphertext))
    seed = codec.decode(alpha_key._secret_bytes())["sign_seed"][:32]
    ed_only = nacl.signing.SigningKey(seed).sign(signed_message(TAG_ENVELOPE, body)).signature

    def post(data: bytes) -> tuple[int, answers.TransportAnswer]:
        conn = http.client.HTTPConnection("127.0.0.1", beta.port, timeout=30)
        try:
            conn.request("POST", "/v1/envelopes", body=data,
                         headers={"Content-Type": "application/vnd.bridge.envelope"})
            response = conn.getresponse()
            signed = answers.parse_answer(response.read(), alpha.home.peer_identity("beta"))
            return response.status, signed
        finally:
            conn.close()

    status, forged = post(envelope.wire_bytes(header_bytes, ciphertext, ed_only))
    assert (status, forged.result, forged.reason) == (400, "rejected", "suite_downgrade")
    # The same envelope with alpha's hybrid signature is authenticated: it takes its place in
    # the chain, and its kind (unknown to version 1) is refused there.
    status, genuine = post(sealed.data)
    assert (status, genuine.result, genuine.reason) == (200, "refused", "unknown_kind")
    assert beta.client.health()["status"] == "ok"
