"""Store and forward: a document submitted while the peer is down is committed and queued, and
delivered exactly once when the peer comes up, without being submitted again."""

from __future__ import annotations

from collections.abc import Callable

from bridge.daemon.pair import Node
from bridge.home.config import Delivery

from .conftest import FAST, EventLog, db, metric, person, wait_for


def test_document_waits_for_the_peer_and_arrives_once(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    # Four entries per envelope: ten items travel as three envelopes (seq 1, 2, 3).
    # Its link counts as stuck after 2 x (max_backoff + request_timeout) = 5 s with no answer.
    alpha, beta = make_nodes(delivery=Delivery(
        chunk_items=4, initial_backoff=FAST.initial_backoff, max_backoff=FAST.max_backoff,
        request_timeout=2.0))
    alpha.start()
    alpha_events = events(alpha)

    answer = alpha.client.submit_document("manifest", "beta", [person(n) for n in range(10)],
                                          id="M-DOWN-1")
    assert answer["id"] == "M-DOWN-1" and answer["items"] == 10
    doc = alpha.client.document("M-DOWN-1")
    assert doc["state"] == "queued"
    # Not delivered; the delivery loop may already have tried (items then count as sent).
    assert sum(doc["items"]["by_status"].values()) == 10
    assert set(doc["items"]["by_status"]) <= {"queued", "sent"}

    unreachable = alpha_events.wait("peer_unreachable", peer="beta")
    assert unreachable.data["detail"]  # why, for the operator
    assert metric(alpha, "queue_depth") == 3
    health = alpha.client.health()
    assert health["status"] == "ok"
    assert health["peers"]["beta"]["queued"] == 3
    assert health["peers"]["beta"]["reachable"] is False
    # It keeps trying (with backoff) while the peer is down; the document stays queued.
    wait_for(lambda: metric(alpha, "delivery_retries_total") >= 3, what="several retries")
    assert alpha.client.document("M-DOWN-1")["state"] == "queued"
    # Alpha is sound ("status"), and the link to beta is stuck past its threshold ("links"):
    # a monitor tells the two apart.
    stuck = wait_for(lambda: (h := alpha.client.health())["links"]["status"] == "degraded"
                     and h, what="alpha: its link to beta stuck")
    assert stuck["status"] == "ok" and stuck["faults"] == {}
    assert stuck["links"] == {"status": "degraded", "stuck": ["beta"],
                              "stuck_after_seconds": 5.0}
    assert stuck["peers"]["beta"]["stuck"] is True
    assert stuck["peers"]["beta"]["last_error"]["reason"] == "unreachable"

    beta.start()
    beta_events = events(beta)
    alpha_events.wait("peer_back", peer="beta")
    alpha_events.wait("document_delivered", id="M-DOWN-1")
    beta_events.wait("document_received", id="M-DOWN-1")
    wait_for(lambda: alpha.client.document("M-DOWN-1")["state"] == "delivered",
             what="alpha: delivered")
    assert metric(alpha, "queue_depth") == 0
    health = alpha.client.health()
    back = health["peers"]["beta"]
    assert (back["queued"], back["reachable"], back["stuck"]) == (0, True, False)
    assert health["links"]["status"] == "ok" and health["links"]["stuck"] == []
    got = beta.client.documents(direction="in")
    assert [(d["id"], d["state"], d["items"]["total"]) for d in got] == [
        ("M-DOWN-1", "received", 10)]
    assert [i["id"] for i in beta.client.items("M-DOWN-1")["items"]] == [
        f"P-{n:05d}" for n in range(10)]
    assert len(alpha.client.documents(direction="out")) == 1

    assert alpha.stop() == 0
    assert beta.stop() == 0
    with db(beta) as con:
        assert con.execute("SELECT seq FROM inbox WHERE peer='alpha' ORDER BY seq"
                           ).fetchall() == [(1,), (2,), (3,)]
        assert con.execute("SELECT COUNT(*), SUM(stored) FROM documents WHERE id='M-DOWN-1'"
                           ).fetchone() == (1, 10)
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT item_id) FROM items").fetchone() == (
            10, 10)
        assert con.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
    with db(alpha) as con:
        outbox = con.execute("SELECT seq, state, attempts FROM outbox ORDER BY seq").fetchall()
        assert [(seq, state) for seq, state, _ in outbox] == [
            (1, "delivered"), (2, "delivered"), (3, "delivered")]
        assert outbox[0][2] > 1  # the first envelope was retried, not resubmitted
        assert con.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 1
        # Same bytes, same receipt: what beta recorded is what alpha holds.
    with db(alpha) as a_con, db(beta) as b_con:
        assert a_con.execute("SELECT seq, digest, receipt FROM outbox ORDER BY seq").fetchall() \
            == b_con.execute("SELECT seq, digest, receipt FROM inbox ORDER BY seq").fetchall()
