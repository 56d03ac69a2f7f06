"""Witnessed checkpoints between two real engines in one process (PROTOCOL.md §13.7): a party
sends its peer a checkpoint once something new about that peer is witnessed, never for the
checkpoint envelopes themselves (the link goes quiet); the peer keeps it and its receipts then
say when the *other* party logged each document; and a peer that predates the kind refuses
it once, raises no alarm on either side, and the link goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_identity
from harness import Harness, open_witnessed_pair, person, wire

from bridge.core import peer_log
from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.kinds import KIND_CHECKPOINT

T = 1_772_463_700


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity,
      mediator: PrivateIdentity) -> Iterator[Harness]:
    with open_witnessed_pair(tmp_path, alpha, beta, mediator) as harness:
        yield harness


def _exchange(h: Harness, doc_id: str) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1), person(2)], doc_id=doc_id)
    h.courier.settle()
    wire.acknowledge(h.beta.engine, doc_id, all="RECEIVED")
    h.courier.settle()


def _checkpoints(engine: wire.Engine, peer: str) -> list[str]:
    return [state for kind, state in wire.outbox_kinds(engine, peer) if kind == KIND_CHECKPOINT]


def test_checkpoint_goes_once_per_new_record_and_the_peers_receipt_has_the_time(
        h: Harness, mediator: PrivateIdentity) -> None:
    _exchange(h, "M-1")
    size = wire.witness_cosigns(h.alpha.engine, mediator, T)
    assert _checkpoints(h.alpha.engine, "beta") == ["pending"]
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered"]
    assert wire.peer_checkpoints(h.beta.engine, "alpha") == [(size, "mediator")]
    # Its own envelope and receipt grew alpha's log: cosigned again, nothing new about beta,
    # nothing sent (two parties never trade checkpoints about checkpoints).
    for _ in range(3):
        wire.witness_cosigns(h.alpha.engine, mediator, T + 1)
        wire.witness_cosigns(h.beta.engine, mediator, T + 1)
        h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered"]
    assert _checkpoints(h.beta.engine, "alpha") == ["delivered"]
    # beta's receipt of alpha's manifest carries alpha's witnessed records too.
    keys = [h.alpha.identity.public, h.beta.identity.public]
    lines = wire.witnessed_lines(h.beta.engine, "M-1", "P-00001", keys, [mediator.public])
    assert any(line.startswith("document M-1: logged by alpha no later than") for line in
               lines), lines
    assert any(line.startswith("acknowledgement ") and "logged by alpha" in line
               for line in lines), lines
    # A new document is news: one more checkpoint, whose proof extends the one beta kept.
    _exchange(h, "M-2")
    wire.witness_cosigns(h.alpha.engine, mediator, T + 2)
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered", "delivered"]
    assert len(wire.peer_checkpoints(h.beta.engine, "alpha")) == 2
    assert wire.events(h.beta.engine, "security_alarm") == []


def test_peer_that_predates_the_kind_refuses_it_once_without_alarm_and_the_link_goes_on(
        h: Harness, mediator: PrivateIdentity) -> None:
    wire.forget_kind(h.beta.engine, KIND_CHECKPOINT)
    _exchange(h, "M-1")
    wire.witness_cosigns(h.alpha.engine, mediator, T)
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["refused"]
    assert wire.events(h.alpha.engine, "security_alarm") == []
    (told,) = wire.events(h.alpha.engine, "peer_checkpoint_unsupported")
    assert told["peer"] == "beta"
    _exchange(h, "M-2")  # the link goes on
    assert wire.document(h.alpha.engine, "M-2")["acks"]
    wire.witness_cosigns(h.alpha.engine, mediator, T + 1)
    assert _checkpoints(h.alpha.engine, "beta") == ["refused"]  # not asked again today
    h.clock.advance(days=1.1)
    wire.witness_cosigns(h.alpha.engine, mediator, T + 100_000)
    assert _checkpoints(h.alpha.engine, "beta") == ["refused", "pending"]  # a day later


def test_records_over_one_envelopes_bound_follow_with_the_same_checkpoint(
        h: Harness, mediator: PrivateIdentity) -> None:
    for n in range(peer_log.MAX_RECORDS // 2 + 1):  # two records about beta each
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
    h.courier.settle()
    for n in range(peer_log.MAX_RECORDS // 2 + 1):
        wire.acknowledge(h.beta.engine, f"M-{n}", all="RECEIVED")
    h.courier.settle()
    size = wire.witness_cosigns(h.alpha.engine, mediator, T)
    h.courier.settle()
    assert len(wire.peer_record_indexes(h.beta.engine, "alpha")) == peer_log.MAX_RECORDS
    # The witness is down now: the rest goes with the same checkpoint, kept once.
    assert wire.offer_checkpoints(h.alpha.engine) == 1
    h.courier.settle()
    assert len(wire.peer_record_indexes(h.beta.engine, "alpha")) == peer_log.MAX_RECORDS + 2
    assert wire.peer_checkpoints(h.beta.engine, "alpha") == [(size, "mediator")]
    assert wire.offer_checkpoints(h.alpha.engine) == 0  # all carried: nothing more to send


def test_checkpoint_of_a_rotated_key_is_not_sent_and_the_new_keys_log_starts_fresh(
        h: Harness, mediator: PrivateIdentity) -> None:
    _exchange(h, "M-1")
    wire.witness_cosigns(h.alpha.engine, mediator, T)
    h.courier.settle()
    wire.rotate_key(h.alpha.engine)
    h.courier.settle()
    _exchange(h, "M-2")
    # The largest cosigned checkpoint is the old key's: beta pins the new one, so it waits.
    assert wire.offer_checkpoints(h.alpha.engine) == 0
    wire.witness_cosigns(h.alpha.engine, mediator, T + 1)  # the new key's log, cosigned
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered", "delivered"]
    conn = wire.sql(h.beta.engine)
    assert conn.execute("SELECT COUNT(DISTINCT origin) FROM peer_checkpoints").fetchone() == (2,)
    assert wire.events(h.beta.engine, "security_alarm") == []
    assert wire.events(h.beta.engine, "document_refused") == []


def test_checkpoint_no_pinned_witness_cosigned_is_kept_but_proves_no_time(
        h: Harness) -> None:
    notary = make_identity("notary")  # a witness alpha uses and beta does not pin
    _exchange(h, "M-1")
    size = wire.witness_cosigns(h.alpha.engine, notary, T)
    h.courier.settle()
    assert wire.peer_checkpoints(h.beta.engine, "alpha") == [(size, "")]
    keys = [h.alpha.identity.public, h.beta.identity.public]
    assert wire.witnessed_lines(h.beta.engine, "M-1", "P-00001", keys, []) == []
    # Once beta pins that witness, the very same checkpoint would count: it is the pin that
    # decides, checked when the checkpoint comes.
    wire.pin_witness_key(h.beta.engine, notary.public)
    _exchange(h, "M-2")
    size = wire.witness_cosigns(h.alpha.engine, notary, T + 1)
    h.courier.settle()
    assert wire.peer_checkpoints(h.beta.engine, "alpha")[-1] == (size, "notary")
    lines = wire.witnessed_lines(h.beta.engine, "M-2", "P-00001", keys, [notary.public])
    assert any(line.startswith("document M-2: logged by alpha") for line in lines), lines


def test_refused_split_view_is_not_offered_again_until_there_is_news(
        h: Harness, mediator: PrivateIdentity) -> None:
    _exchange(h, "M-1")
    wire.witness_cosigns(h.alpha.engine, mediator, T)
    h.courier.settle()
    wire.alter_kept_peer_root(h.beta.engine, "alpha")
    _exchange(h, "M-2")
    wire.witness_cosigns(h.alpha.engine, mediator, T + 1)
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered", "refused"]
    (alarm,) = wire.events(h.beta.engine, "security_alarm")
    assert alarm["reason"] == peer_log.SPLIT_VIEW
    assert [a["reason"] for a in wire.events(h.alpha.engine, "security_alarm")] == \
        [peer_log.SPLIT_VIEW]
    # The refusal grew both logs; cosigned again and again, nothing is sent: no loop.
    for k in range(3):
        wire.witness_cosigns(h.alpha.engine, mediator, T + 2 + k)
        h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered", "refused"]
    # News (a new document) is offered again, from what beta last accepted: refused again,
    # since beta's view of alpha's log still differs; the link itself never stalls.
    _exchange(h, "M-3")
    wire.witness_cosigns(h.alpha.engine, mediator, T + 9)
    h.courier.settle()
    assert _checkpoints(h.alpha.engine, "beta") == ["delivered", "refused", "refused"]
    assert wire.document(h.alpha.engine, "M-3")["acks"]
