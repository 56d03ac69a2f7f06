"""The main exchange scenarios between two real engines in one process (``tests/harness``): a
manifest and a roster exchanged and every item acknowledged; an envelope delivered twice; an
envelope lost on the way; two different envelopes with one sequence number; a key rotation in
the middle of an exchange; the acknowledgement lifecycle.

Each party has its own home and SQLite store file; the in-memory courier carries the very
bytes the HTTP binding would, so what is checked here is the engine's behaviour, not a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core import codec, envelope, lifecycle
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import InputError

MANIFEST_META = {"agreement": "AGR-TEST-1", "batch": 3, "handover_point": "Test point A",
                 "agreed_date": "2026-03-01", "transport": "bus"}


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def statuses(engine: wire.Engine, doc_id: str) -> dict[str, str]:
    return {i["id"]: i["status"] for i in wire.items(engine, doc_id)}


def test_manifest_and_roster_exchanged_and_every_item_acknowledged(h: Harness) -> None:
    sent = [person(n) for n in range(1, 11)]  # three envelopes of four entries at most
    wire.submit(h.alpha.engine, "manifest", "beta", sent, doc_id="M-1", meta=MANIFEST_META)
    wire.submit(h.alpha.engine, "roster", "beta", [person(n) for n in range(20, 23)],
                doc_id="R-1", meta={"category": "civilian detainees"})
    trips = h.courier.settle()
    assert [(t.sender, t.seq, t.outcome and t.outcome.state) for t in trips] == [
        ("alpha", 1, "delivered"), ("alpha", 2, "delivered"), ("alpha", 3, "delivered"),
        ("alpha", 4, "delivered")]
    received = wire.document(h.beta.engine, "M-1", "in")
    assert (received["state"], received["meta"], received["items"]["total"]) == (
        "received", MANIFEST_META, 10)
    assert [i["id"] for i in wire.items(h.beta.engine, "M-1")] == [p["id"] for p in sent]
    assert [i["data"] for i in wire.items(h.beta.engine, "M-1")] == [
        {k: v for k, v in p.items() if k != "id"} for p in sent]
    assert wire.document(h.alpha.engine, "M-1")["state"] == "delivered"
    assert wire.events(h.beta.engine, "document_received") == [
        {"id": "M-1", "type": "manifest", "peer": "alpha", "items": 10},
        {"id": "R-1", "type": "roster", "peer": "alpha", "items": 3}]

    first = wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00001", "status": "RECEIVED"},
        {"id": "P-00002", "status": "DISPUTED", "reason": "date of birth does not match"},
        {"id": "X-UNDECLARED-1", "status": "RECEIVED_UNDECLARED"}])
    rest = wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    wire.acknowledge(h.beta.engine, "R-1", all="RECEIVED")
    assert first["items"] == 3 and rest["items"] == 8  # the dispute is not overwritten
    h.courier.settle()

    final = wire.document(h.alpha.engine, "M-1")
    assert final["state"] == "acknowledged"
    assert final["items"]["by_status"] == {"RECEIVED": 9, "DISPUTED": 1, "RECEIVED_UNDECLARED": 1}
    assert [a["id"] for a in final["acks"]] == [first["ack_id"], rest["ack_id"]]
    assert statuses(h.alpha.engine, "M-1") == statuses(h.beta.engine, "M-1")
    assert wire.document(h.alpha.engine, "R-1")["state"] == "acknowledged"
    assert wire.events(h.alpha.engine, "document_acknowledged") == [
        {"id": "M-1", "peer": "beta", "items": 10}, {"id": "R-1", "peer": "beta", "items": 3}]
    for side in (h.alpha.engine, h.beta.engine):
        assert wire.refusals(side) == []
        assert wire.health(side)["status"] == "ok"
        assert {e.state for e in wire.outbox(side, "beta" if side is h.alpha.engine
                                             else "alpha")} == {"delivered"}


def test_envelope_delivered_twice_gets_the_same_stored_transport_receipt(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(3)], doc_id="M-1")
    first = h.courier.step(h.alpha, lose_answer=True)  # accepted; the answer never arrives
    assert first is not None and first.answer is not None
    assert first.answer.outcome == "accepted"
    assert wire.outbox(h.alpha.engine, "beta")[0].state == "pending"
    again = h.courier.step(h.alpha)  # the delivery loop sends the same bytes again
    assert again is not None and again.answer is not None and again.outcome is not None
    assert again.answer.outcome == "duplicate"
    assert again.answer.body == first.answer.body == wire.inbox_receipt(h.beta.engine,
                                                                        "alpha", 1)
    assert again.outcome.state == "delivered"
    assert wire.outbox(h.alpha.engine, "beta")[0].receipt == first.answer.body
    # A third copy (the network repeats it) changes nothing either.
    pending = wire.pending_batch(h.alpha.engine, "beta", 1)
    assert pending == []
    replay = wire.receive(h.beta.engine, wire.envelope_bytes(h.alpha.engine, "beta", 1))
    assert (replay.outcome, replay.body) == ("duplicate", first.answer.body)
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1]
    assert len(wire.items(h.beta.engine, "M-1")) == 3
    assert len(wire.events(h.beta.engine, "document_received")) == 1


def test_lost_envelope_makes_the_receiver_answer_gap_and_the_sender_rewind(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                doc_id="M-1")  # three envelopes
    trips = h.courier.batch(h.alpha, 3, lose=[1])  # all three in flight; the second lost
    assert [t.outcome and (t.outcome.state, t.outcome.reason) for t in trips] == [
        ("delivered", None), None, ("rewound", "gap")]
    assert trips[2].answer is not None and trips[2].answer.outcome == "rejected"
    assert [(e.seq, e.state) for e in wire.outbox(h.alpha.engine, "beta")] == [
        (1, "delivered"), (2, "pending"), (3, "pending")]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1]
    assert wire.document(h.beta.engine, "M-1")["state"] == "receiving"
    resent = h.courier.settle()
    assert [(t.seq, t.outcome and t.outcome.state) for t in resent] == [
        (2, "delivered"), (3, "delivered")]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3]
    assert wire.document(h.beta.engine, "M-1")["state"] == "received"
    assert len(wire.items(h.beta.engine, "M-1")) == 10
    assert wire.refusals(h.beta.engine) == []  # a gap changes nothing and is not recorded


def test_first_envelope_lost_the_gap_asks_for_seq_1(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(6)],
                doc_id="M-1")
    trips = h.courier.batch(h.alpha, 2, lose=[0])
    assert trips[1].outcome is not None
    assert (trips[1].outcome.state, trips[1].outcome.detail) == ("rewound", "peer expects 1")
    h.courier.settle()
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2]


def test_store_restored_from_a_backup_seals_another_envelope_with_a_used_seq(
        h: Harness, tmp_path: Path) -> None:
    """A fork: alpha's store is put back to a backup taken before seq 1 was sealed, and the
    next document gets seq 1 again with other content. Beta keeps what it accepted, refuses
    the other envelope as equivocation, records it and raises the alarm."""
    copy = tmp_path / "alpha-backup.db"
    wire.backup(h.alpha.engine, copy)
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    h.courier.settle()
    accepted = wire.inbox_receipt(h.beta.engine, "alpha", 1)
    h.alpha.close()
    wire.restore(h.alpha.home, copy)
    h.alpha.restart()
    wire.submit(h.alpha.engine, "manifest", "beta", [person(2)], doc_id="M-2")
    trip = h.courier.step(h.alpha)
    assert trip is not None and trip.answer is not None and trip.outcome is not None
    assert trip.answer.outcome == "rejected"
    assert (trip.outcome.state, trip.outcome.reason) == ("failed", "equivocation")
    assert [(e.seq, e.state) for e in wire.outbox(h.alpha.engine, "beta")] == [(1, "pending")]
    assert wire.inbox_receipt(h.beta.engine, "alpha", 1) == accepted
    assert [d["id"] for d in wire.documents(h.beta.engine, "in")] == ["M-1"]
    (refusal,) = wire.refusals(h.beta.engine)
    assert (refusal["peer"], refusal["seq"], refusal["reason"], refusal["alarm"]) == (
        "alpha", 1, "equivocation", 1)
    assert [e["reason"] for e in wire.events(h.beta.engine, "security_alarm")] == [
        "equivocation"]


def test_envelope_with_the_next_seq_but_another_prev_is_a_fork(
        h: Harness, alpha: PrivateIdentity) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    h.courier.settle()
    forked = envelope.seal(alpha, wire.identity(h.beta.engine).public,
                           message_id=bytes(16), seq=2, prev=bytes(32),
                           sent_at=h.clock(), kind="chunk", payload=b"")
    answer = wire.receive(h.beta.engine, forked.data)
    assert answer.outcome == "rejected"
    assert [r["reason"] for r in wire.refusals(h.beta.engine)] == ["equivocation"]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1]
    # The honest chain goes on from where it was.
    wire.submit(h.alpha.engine, "manifest", "beta", [person(2)], doc_id="M-2")
    h.courier.settle()
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2]


def test_key_rotation_in_the_middle_of_an_exchange(h: Harness) -> None:
    """Alpha rotates while its manifest is half delivered, beta while it acknowledges: the
    envelopes sealed under an old key before its rotation are still accepted, those after it
    are sealed under the new one, and a receipt signed by beta's new key is trusted only once
    beta's rotation statement has arrived."""
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                doc_id="M-1")  # seq 1-3
    h.courier.step(h.alpha)
    alpha_old = h.alpha.identity.public
    rotated = wire.rotate_key(h.alpha.engine)  # the statement is seq 4, under the old key
    assert rotated["old_fingerprint"] == alpha_old.fingerprint
    wire.submit(h.alpha.engine, "roster", "beta", [person(20)], doc_id="R-1")  # seq 5, new key
    h.courier.settle()
    alpha_new = h.alpha.identity.public
    assert alpha_new.key_id != alpha_old.key_id
    assert wire.pinned(h.beta.engine, "alpha").key_id == alpha_new.key_id
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3, 4, 5]
    assert [e["fingerprint"] for e in wire.events(h.beta.engine, "peer_key_rotated")] == [
        alpha_new.fingerprint]

    beta_old = h.beta.identity.public
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")  # sealed to alpha's new key
    wire.rotate_key(h.beta.engine)
    wire.acknowledge(h.beta.engine, "R-1", all="RECEIVED")  # signed by beta's new key
    # Before beta's statement reaches alpha, alpha sends: beta accepts, but answers under a
    # key alpha does not trust yet. Nothing is lost: the retry is a duplicate, re-signed.
    wire.submit(h.alpha.engine, "manifest", "beta", [person(30)], doc_id="M-2")
    early = h.courier.step(h.alpha)
    assert early is not None and early.answer is not None and early.outcome is not None
    assert early.answer.outcome == "accepted"
    assert (early.outcome.state, early.outcome.reason) == ("failed", "bad_receipt")
    h.courier.settle()
    assert wire.pinned(h.alpha.engine, "beta").key_id == h.beta.identity.key_id != beta_old.key_id
    for doc_id in ("M-1", "R-1"):
        assert wire.document(h.alpha.engine, doc_id)["state"] == "acknowledged"
    assert wire.document(h.beta.engine, "M-2", "in")["state"] == "received"
    assert wire.document(h.alpha.engine, "M-2")["state"] == "delivered"
    # Restarted on their key files, both go on where they were.
    h.alpha.restart()
    h.beta.restart()
    wire.acknowledge(h.beta.engine, "M-2", all="RECEIVED")
    h.courier.settle()
    assert wire.document(h.alpha.engine, "M-2")["state"] == "acknowledged"
    for side in (h.alpha.engine, h.beta.engine):
        assert wire.refusals(side) == []


def test_acknowledgement_lifecycle_received_disputed_confirmed(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(1, 4)],
                doc_id="M-1")
    h.courier.settle()
    first = wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00001", "status": "RECEIVED"},
        {"id": "P-00002", "status": "DISPUTED", "reason": "name does not match",
         "evidence": "report TEST-17"},
        {"id": "P-00003", "status": "PENDING_IDENTIFICATION"}])
    with pytest.raises(InputError) as refused:
        wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "P-00001",
                                                       "status": "NOT_RECEIVED"}])
    assert refused.value.code == "transition_not_allowed"
    assert "RECEIVED may change only to" in refused.value.detail
    second = wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00002", "status": "RECEIVED", "reason": "resolved at the handover"},
        {"id": "P-00003", "status": "IDENTITY_CONFIRMED", "evidence": "match report TEST-9"}])
    with pytest.raises(InputError) as refused:
        wire.acknowledge(h.beta.engine, "M-1", items=[
            {"id": "P-00001", "status": "PENDING_IDENTIFICATION"},
            {"id": "P-00003", "status": "NOT_RECEIVED"}])
    assert (refused.value.code, refused.value.field) == ("transition_not_allowed",
                                                         "items[1].status")
    assert "P-00003" in refused.value.detail
    # An item never declared enters as RECEIVED_UNDECLARED, and only so.
    with pytest.raises(InputError) as refused:
        wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "X-77", "status": "RECEIVED"}])
    assert refused.value.code == "unknown_item"
    wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "X-9",
                                                   "status": "RECEIVED_UNDECLARED"}])
    wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "X-9",
                                                   "status": "PENDING_IDENTIFICATION"}])
    h.courier.settle()
    assert len(wire.acks(h.alpha.engine)) == 4  # the refused changes signed nothing
    assert [e["status"] for e in wire.item(h.alpha.engine, "M-1", "X-9")["history"]] == [
        "RECEIVED_UNDECLARED", "PENDING_IDENTIFICATION"]
    history = wire.item(h.alpha.engine, "M-1", "P-00003")["history"]
    assert [(e["status"], e["ack_id"], e["evidence"]) for e in history] == [
        ("PENDING_IDENTIFICATION", first["ack_id"], None),
        ("IDENTITY_CONFIRMED", second["ack_id"], "match report TEST-9")]
    disputed = wire.item(h.alpha.engine, "M-1", "P-00002")
    assert [(e["status"], e["reason"]) for e in disputed["history"]] == [
        ("DISPUTED", "name does not match"), ("RECEIVED", "resolved at the handover")]
    assert statuses(h.alpha.engine, "M-1") == statuses(h.beta.engine, "M-1") == {
        "P-00001": "RECEIVED", "P-00002": "RECEIVED", "P-00003": "IDENTITY_CONFIRMED"}
    final = wire.document(h.alpha.engine, "M-1")
    assert final["state"] == "acknowledged"
    assert final["items"]["by_status"] == {"RECEIVED": 2, "IDENTITY_CONFIRMED": 1,
                                           "PENDING_IDENTIFICATION": 1}


def test_every_status_change_is_allowed_or_refused_as_the_lifecycle_table_says(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """One item per (from, to) pair of declared statuses: the receiver refuses exactly the
    changes ``bridge.core.lifecycle`` does not list, and the sender, checking the signed
    acknowledgements against the same table, takes every allowed one."""
    with open_pair(tmp_path, alpha, beta, chunk_items=256) as h:
        check_every_change(h)


def check_every_change(h: Harness) -> None:
    declared = [s for s in lifecycle.TRANSITIONS if s != lifecycle.UNDECLARED]
    pairs = [(a, b) for a in declared for b in declared]
    wire.submit(h.alpha.engine, "manifest", "beta",
                [person(n) for n in range(len(pairs))], doc_id="M-ALL")
    h.courier.settle()
    ids = [f"P-{n:05d}" for n in range(len(pairs))]
    wire.acknowledge(h.beta.engine, "M-ALL", items=[
        {"id": i, "status": a} for i, (a, _) in zip(ids, pairs, strict=True)])
    allowed = [(i, b) for i, (a, b) in zip(ids, pairs, strict=True)
               if lifecycle.allowed(a, b, declared=True)]
    refused = [(i, b) for i, (a, b) in zip(ids, pairs, strict=True)
               if not lifecycle.allowed(a, b, declared=True)]
    assert allowed and refused
    with pytest.raises(InputError) as err:
        wire.acknowledge(h.beta.engine, "M-ALL", items=[
            {"id": i, "status": b, "reason": "changed"} for i, b in refused])
    assert err.value.code == "transition_not_allowed"
    assert len(err.value.problems) == min(len(refused), 100)
    wire.acknowledge(h.beta.engine, "M-ALL", items=[
        {"id": i, "status": b, "reason": "changed"} for i, b in allowed])
    h.courier.settle()
    expected = {i: a for i, (a, _) in zip(ids, pairs, strict=True)} | dict(allowed)
    assert statuses(h.alpha.engine, "M-ALL") == statuses(h.beta.engine, "M-ALL") == expected
    assert wire.refusals(h.alpha.engine) == []


def test_retries_of_a_submission_and_of_an_acknowledgement_record_nothing_new(
        h: Harness) -> None:
    """The caller of a call whose answer was lost cannot tell whether it committed: the same
    document id with the same content is the committed document, and an acknowledgement that
    restates what each item says records nothing."""
    sent = [person(n) for n in range(1, 5)]
    first = wire.submit(h.alpha.engine, "manifest", "beta", sent, doc_id="M-1")
    retry = wire.submit(h.alpha.engine, "manifest", "beta", sent, doc_id="M-1")
    assert retry["existing"] is True and retry["digest"] == first["digest"]
    assert len(wire.outbox(h.alpha.engine, "beta")) == 1
    for other in ([*sent[:1], sent[1] | {"surname": "Othername"}, *sent[2:]], sent[:3]):
        with pytest.raises(InputError) as conflict:
            wire.submit(h.alpha.engine, "manifest", "beta", other, doc_id="M-1")
        assert conflict.value.code == "duplicate_document"
    h.courier.settle()

    items = [{"id": "P-00001", "status": "RECEIVED"},
             {"id": "P-00003", "status": "DISPUTED", "reason": "tag differs"}]
    assert wire.acknowledge(h.beta.engine, "M-1", items=items)["items"] == 2
    assert wire.acknowledge(h.beta.engine, "M-1", items=items) == {
        "ack_id": None, "items": 0, "changed": {}}
    assert wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")["items"] == 2
    assert wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")["items"] == 0
    # A change of reason is a new statement, not a retry; a bulk change names what it changes.
    reason = wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00003", "status": "DISPUTED", "reason": "tag differs, seal broken"}])
    assert (reason["items"], reason["changed"]) == (1, {"DISPUTED": 1})
    including = wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED", including=["DISPUTED"])
    assert (including["items"], including["changed"]) == (1, {"DISPUTED": 1})
    h.courier.settle()
    for side in (h.alpha.engine, h.beta.engine):
        assert [e["status"] for e in wire.item(side, "M-1", "P-00003")["history"]] == [
            "DISPUTED", "DISPUTED", "RECEIVED"]
        assert [e["status"] for e in wire.item(side, "M-1", "P-00001")["history"]] == [
            "RECEIVED"]
    assert len(wire.acks(h.alpha.engine)) == 4


def test_receipt_lost_then_the_receiver_rotates_the_retry_gets_it_under_the_new_key(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    lost = h.courier.step(h.alpha, lose_answer=True)
    assert lost is not None and lost.answer is not None
    wire.rotate_key(h.beta.engine)
    h.courier.settle()
    (entry,) = wire.outbox(h.alpha.engine, "beta")
    assert entry.state == "delivered" and entry.receipt is not None
    first, final = (codec.decode(codec.decode(b, codec.SMALL_LIMITS)["r"], codec.SMALL_LIMITS)
                    for b in (lost.answer.body, entry.receipt))
    assert final["by_key"] == h.beta.identity.key_id != first["by_key"]
    assert {k: v for k, v in final.items() if k != "by_key"} == {
        k: v for k, v in first.items() if k != "by_key"}
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1]


def test_a_retired_key_cannot_sign_new_envelopes(h: Harness, alpha: PrivateIdentity) -> None:
    wire.rotate_key(h.alpha.engine)  # the statement is seq 1
    h.courier.settle()
    forged = envelope.seal(alpha, h.beta.identity.public, message_id=bytes(16), seq=2,
                           prev=wire.inbox_digest(h.beta.engine, "alpha", 1),
                           sent_at=h.clock(), kind="chunk", payload=b"")
    answer = wire.receive(h.beta.engine, forged.data)
    assert answer.outcome == "rejected"
    (refusal,) = wire.refusals(h.beta.engine)
    assert (refusal["reason"], refusal["alarm"]) == ("unauthenticated", 1)
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1]
    assert wire.health(h.beta.engine)["status"] == "ok"



def _tried_over_http(h: Harness) -> str:
    """Alpha's lowest pending envelope carried to beta, and beta's answer acted on as the
    HTTP delivery loop does: the attempt counted in the answer's own commit."""
    (pending,) = wire.pending_batch(h.alpha.engine, "beta", 1)
    answer = wire.receive(h.beta.engine, pending.data)
    return h.alpha.engine.tried(pending.row, answer.body, "HTTP", frozenset()).state


def test_items_of_an_accepted_chunk_read_delivered_and_of_a_refused_one_sent(
        h: Harness) -> None:
    """The answer that ends an envelope's first attempt is recorded with it: accepted, the
    chunk's items go from queued to delivered in that one commit (never written as sent on the
    way); refused by the peer, they read sent, as items of a tried envelope do."""
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(3)],
                doc_id="M-1")
    assert set(statuses(h.alpha.engine, "M-1").values()) == {"queued"}
    assert _tried_over_http(h) == "delivered"
    assert set(statuses(h.alpha.engine, "M-1").values()) == {"delivered"}
    # Beta holds another document M-2 from alpha already, so it refuses this one (signed).
    with h.beta.engine.store.transaction():
        h.beta.engine.store._conn.execute(
            "UPDATE documents SET id='M-2' WHERE id='M-1' AND direction='in'")
    wire.submit(h.alpha.engine, "manifest", "beta", [person(9)], doc_id="M-2")
    assert _tried_over_http(h) == "refused"
    assert set(statuses(h.alpha.engine, "M-2").values()) == {"sent"}
