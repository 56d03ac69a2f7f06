"""Faults on the way through the mediator's relay, with real processes: a real nats-server
(killed, restarted, wiped), two real daemons (one killed), and messages put on the broker with
the mediator's own rights. Exactly once stays end to end: every item is acknowledged once on
both sides, whatever the broker does, and what the broker makes up is refused and recorded."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import pytest

from bridge.daemon.pair import Node
from bridge.home.config import Delivery
from bridge.transports.relay import binding

from .conftest import db, metric, person, wait_for
from .launcher import command
from .relay_broker import Broker

CHUNKED = Delivery(initial_backoff=0.05, max_backoff=0.5, request_timeout=30.0,
                   chunk_items=250)
N = 3000  # 12 envelopes of 250 items; the bench takes the large N


def _received(node: Node, doc_id: str) -> bool:
    return any(d["id"] == doc_id and d["state"] in ("received", "acknowledged")
               for d in node.client.documents(direction="in"))


def _count(node: Node, sql: str, *args: Any) -> int:
    with db(node) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _start(*nodes: Node) -> None:
    for node in nodes:
        node.start()
        wait_for(lambda n=node: n.client.health()["relay"]["state"] == "connected",
                 what=f"{node.party} connected to the relay")


def _short_answer_wait(node: Node, seconds: float) -> None:
    cfg = node.home.config()
    assert cfg.relay is not None
    node.home.write_config(dataclasses.replace(
        cfg, relay=dataclasses.replace(cfg.relay, answer_wait=seconds)))


def _exactly_once(alpha: Node, beta: Node, doc_id: str, n: int) -> None:
    """Every item acknowledged, once: beta took each of alpha's envelopes into its chain once
    (one inbox row per outbox row, each row delivered), holds n items, and alpha sees n
    acknowledged."""
    beta.client.acknowledge(doc_id, all="RECEIVED")
    wait_for(lambda: alpha.client.document(doc_id)["items"]["acknowledged"] == n,
             what="alpha to see every acknowledgement")
    sent = _count(alpha, "SELECT count(*) FROM outbox WHERE peer = 'beta'")
    # Through the relay beta's transport receipt travels on its own: a resent envelope's may
    # reach alpha after beta's acknowledgement of the document has, so it is waited for.
    wait_for(lambda: _count(alpha, "SELECT count(*) FROM outbox WHERE peer = 'beta' "
                                   "AND state != 'delivered'") == 0,
             what="alpha to hold a transport receipt for every envelope it sent")
    assert _count(beta, "SELECT count(*) FROM inbox WHERE peer = 'alpha'") == sent
    assert _count(beta, "SELECT count(*) FROM items") == n
    back = _count(beta, "SELECT count(*) FROM outbox WHERE peer = 'alpha'")
    wait_for(lambda: _count(alpha, "SELECT count(*) FROM inbox WHERE peer = 'beta'") == back,
             what="alpha to take every acknowledgement envelope")


def test_broker_killed_mid_exchange_and_restarted_every_item_once(relay_pair) -> None:
    broker, alpha, beta = relay_pair(delivery=CHUNKED)
    _start(alpha, beta)
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(N)], id="R-KILL")
    wait_for(lambda: _count(beta, "SELECT count(*) FROM inbox WHERE peer = 'alpha'") >= 3,
             what="beta to be in the middle of the roster")
    broker.kill()
    time.sleep(0.5)
    broker.start()
    wait_for(lambda: _received(beta, "R-KILL"), what="beta to receive the whole roster")
    _exactly_once(alpha, beta, "R-KILL", N)
    assert metric(beta, "envelopes_accepted_total") == _count(
        alpha, "SELECT count(*) FROM outbox WHERE peer = 'beta'")  # none taken twice


@pytest.mark.parametrize("victim", ["receiver", "sender"])
def test_a_daemon_killed_mid_exchange_every_item_once(relay_pair, victim: str) -> None:
    _, alpha, beta = relay_pair(delivery=CHUNKED, ack_wait=5.0)
    _start(alpha, beta)
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(N)], id="R-DIE")
    wait_for(lambda: _count(beta, "SELECT count(*) FROM inbox WHERE peer = 'alpha'") >= 3,
             what="beta to be in the middle of the roster")
    killed = beta if victim == "receiver" else alpha
    killed.kill()
    _start(killed)
    wait_for(lambda: _received(beta, "R-DIE"), what="beta to receive the whole roster")
    _exactly_once(alpha, beta, "R-DIE", N)


def test_broker_down_at_submission_is_delivered_when_it_returns_without_resubmitting(
        relay_pair) -> None:
    broker, alpha, beta = relay_pair()
    _start(alpha, beta)
    broker.kill()
    wait_for(lambda: alpha.client.health()["relay"]["state"] != "connected",
             what="alpha to see the relay gone")
    assert "relay_disconnected" in alpha.client.health()["faults"]
    answer = alpha.client.submit_document("roster", "beta", [person(i) for i in range(20)],
                                          id="R-LATER")
    assert answer["id"] == "R-LATER" and not answer.get("existing")  # 202: queued at once
    broker.start()
    wait_for(lambda: _received(beta, "R-LATER"), what="beta to receive it once the broker is back")
    _exactly_once(alpha, beta, "R-LATER", 20)
    assert metric(alpha, "documents_submitted_total") == 1


def test_broker_that_lost_its_data_is_survived_by_resending_from_the_outbox(
        relay_pair) -> None:
    broker, alpha, beta = relay_pair()
    _short_answer_wait(alpha, 2.0)
    _start(alpha)  # beta is away: the envelope waits in the broker
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(20)], id="R-LOST")
    wait_for(lambda: broker.waiting("beta") >= 1, what="the envelope to wait in the broker")
    broker.stop()
    broker.wipe()  # the mediator lost every message and every duplicate record
    assert not broker.store.exists()
    # (Not "nothing waits once it is back": alpha, still running, may already have resent.)
    broker.start()
    _start(beta)
    wait_for(lambda: _received(beta, "R-LOST"), what="beta to receive the resent envelope")
    _exactly_once(alpha, beta, "R-LOST", 20)


def test_redelivery_after_the_ack_wait_is_answered_with_the_original_receipt(
        relay_pair) -> None:
    _, alpha, beta = relay_pair(ack_wait=2.0)
    _start(alpha)
    beta.command = command(beta.home.path, relay_skip_acks=1)  # beta's first ack is "lost"
    _start(beta)
    beta.command = None
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(20)], id="R-AGAIN")
    wait_for(lambda: metric(beta, "envelopes_duplicate_total") >= 1,
             what="the broker to bring the unacked envelope again")
    assert metric(beta, "envelopes_accepted_total") == 1  # processed once
    wait_for(lambda: _received(beta, "R-AGAIN"), what="beta to have the roster")
    _exactly_once(alpha, beta, "R-AGAIN", 20)


def _publish(broker: Broker, subject: str, body: bytes, headers: dict[str, str]) -> None:
    async def put(nc: Any) -> None:
        await nc.jetstream().publish(subject, body, headers=headers)
    broker.as_admin(put)


def _refusals(node: Node) -> list[tuple[str, str]]:
    with db(node) as conn:
        return [(str(r), str(s)) for r, s in conn.execute(
            "SELECT reason, coalesce(source, '') FROM refusals")]


def test_messages_made_up_on_the_broker_with_the_mediators_rights_are_refused_and_recorded(
        relay_pair) -> None:
    broker, alpha, beta = relay_pair()
    _start(alpha, beta)
    to_beta = binding.subject("beta", "alpha")
    garbage = b"\x83\xa1c\xc4\x01x not an envelope"
    # An "envelope" that is no envelope, with every header right.
    _publish(broker, to_beta, garbage, binding.envelope_headers(garbage))
    # A body changed after it was published: Nats-Msg-Id no longer its hash.
    _publish(broker, to_beta, garbage + b"!", {**binding.envelope_headers(garbage),
                                              "Nats-Msg-Id": hashlib.sha256(b"x").hexdigest()})
    # A message of no kind the binding knows.
    _publish(broker, to_beta, b"hello", {"Nats-Msg-Id": hashlib.sha256(b"hello").hexdigest(),
                                         binding.HEADER_KIND: "command"})
    # A forged answer to alpha, naming an envelope alpha never sent.
    forged = b"\x82\xa1r\xc4\x01x\xa1s\xc4\x01y"
    _publish(broker, binding.subject("alpha", "beta"), forged,
             binding.answer_headers(forged, seq=1, envelope=b"\x07" * 32))
    wait_for(lambda: {r for r, _ in _refusals(beta)} >= {"bad_msg_id", "bad_relay_kind"},
             what="beta to refuse and record the made-up messages")
    wait_for(lambda: metric(beta, "envelopes_rejected_total") >= 1,
             what="beta to reject the envelope that is none")
    wait_for(lambda: any(r == "bad_receipt" and "relay subject" in s
                         for r, s in _refusals(alpha)),
             what="alpha to refuse the forged answer")
    assert all("relay subject bridge.v1.beta.alpha" in s for r, s in _refusals(beta)
               if r.startswith("bad_"))
    assert beta.client.documents(direction="in") == []  # nothing applied
    wait_for(lambda: broker.waiting("beta") == 0 and broker.waiting("alpha") == 0,
             what="every made-up message acked (it does not come back)")
    # And the relay still carries the real thing.
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(5)], id="R-REAL")
    wait_for(lambda: _received(beta, "R-REAL"), what="beta to receive a real roster")


def test_envelopes_the_broker_brings_out_of_order_are_each_taken_in_their_turn(
        relay_pair) -> None:
    # A window of alpha's envelopes, sealed while the broker is down, put on it out of order
    # (as a redelivery after a NAK or a restart brings them): the ones past the next due are
    # left to the broker, not acked as gaps (alpha's resend of the same bytes would be dropped
    # inside the duplicate window), nor answered as gaps (alpha would resend, or rewind).
    broker, alpha, beta = relay_pair(delivery=dataclasses.replace(CHUNKED, chunk_items=2),
                                     start_broker=False)
    alpha.start()
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(6)], id="R-ORDER")
    alpha.stop()
    with db(alpha) as conn:
        sealed = [bytes(r[0]) for r in conn.execute(
            "SELECT COALESCE(s.envelope, o.envelope) FROM outbox o LEFT JOIN outbox_sent s "
            "ON (s.peer, s.seq) = (o.peer, o.seq) WHERE o.peer = 'beta' ORDER BY o.seq")]
    assert len(sealed) == 3
    broker.start()
    for body in (sealed[2], sealed[0], sealed[1]):  # 3 before 1 and 2
        _publish(broker, binding.subject("beta", "alpha"), body,
                 binding.envelope_headers(body))
    _start(beta)
    wait_for(lambda: _received(beta, "R-ORDER"), what="beta to take all three, in turn")
    assert metric(beta, "relay_gaps_left_total") >= 1
    assert metric(beta, "envelopes_accepted_total") == 3
    _start(alpha)
    _exactly_once(alpha, beta, "R-ORDER", 6)
    assert metric(alpha, "delivery_rewound_total") == 0


def test_a_full_store_at_the_receiver_mid_window_loses_nothing_once_it_can_write_again(
        relay_pair) -> None:
    # Beta's store fills part way through the roster (a real SQLITE_FULL): it answers the
    # envelope it cannot record `unavailable` and leaves it to the broker, and the envelopes
    # of the window behind it are gaps, left to the broker unanswered. Started again with
    # room, beta takes them all, in turn, once.
    _, alpha, beta = relay_pair(delivery=dataclasses.replace(CHUNKED, chunk_items=2))
    _start(beta)
    beta.stop()
    with db(beta) as conn:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    beta.command = command(beta.home.path, max_pages=pages + 4)
    _start(beta)
    beta.command = None  # started again later: uncapped
    _start(alpha)
    alpha.client.submit_document("roster", "beta", [person(i) for i in range(40)], id="R-FULL")
    wait_for(lambda: metric(beta, "store_unavailable_total") >= 1
             and metric(beta, "relay_gaps_left_total") >= 1,
             what="beta's store full, and the rest of the window left to the broker")
    assert not _received(beta, "R-FULL")
    beta.stop()
    _start(beta)
    wait_for(lambda: _received(beta, "R-FULL"), what="beta to take the whole roster",
             timeout=120)
    _exactly_once(alpha, beta, "R-FULL", 40)
