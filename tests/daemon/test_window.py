"""Several envelopes in flight (PROTOCOL.md §8.7). A sender with a window delivers a
many-chunk document and the small documents queued behind it, each envelope once, in chain
order, with no refusal; and a receiver holds an envelope that overtook an earlier one (it came
first on another connection) until the earlier one is in, so both are accepted, not one
answered with a gap. Real daemons, real HTTP on 127.0.0.1; no timing assertions."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable

from bridge.core import answers as transport
from bridge.daemon.pair import Node
from bridge.home.config import Delivery

from .conftest import FAST, EventLog, db, metric, person, wait_for


def _post(node: Node, body: bytes, out: dict[int, tuple[int, bytes]], key: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    try:
        conn.request("POST", "/v1/envelopes", body=body,
                     headers={"Content-Type": "application/vnd.bridge.envelope"})
        resp = conn.getresponse()
        out[key] = (resp.status, resp.read())
    finally:
        conn.close()


def test_a_window_delivers_every_chunk_and_the_small_documents_behind_once_in_order(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes(delivery=Delivery(
        chunk_items=2, in_flight=8, initial_backoff=FAST.initial_backoff,
        max_backoff=FAST.max_backoff))
    alpha.start()
    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(60)],
                                 id="M-BIG")  # 30 envelopes
    for k in range(5):
        alpha.client.submit_document("manifest", "beta", [person(100 + k)], id=f"M-SMALL-{k}")
    beta.start()
    alpha_events = events(alpha)
    for doc_id in ["M-BIG"] + [f"M-SMALL-{k}" for k in range(5)]:
        alpha_events.wait("document_delivered", id=doc_id)
    wait_for(lambda: len(beta.client.documents(direction="in")) == 6, what="beta: all six")
    assert beta.client.document("M-BIG")["state"] == "received"
    assert len(list(beta.client.iter_items("M-BIG"))) == 60
    assert alpha.stop() == 0 and beta.stop() == 0
    with db(beta) as con:
        assert [s for (s,) in con.execute("SELECT seq FROM inbox WHERE peer='alpha' "
                                          "ORDER BY seq")] == list(range(1, 36))
        assert con.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
    with db(alpha) as a_con, db(beta) as b_con:
        assert a_con.execute("SELECT seq, digest, receipt FROM outbox ORDER BY seq").fetchall() \
            == b_con.execute("SELECT seq, digest, receipt FROM inbox ORDER BY seq").fetchall()


def test_an_envelope_that_overtook_the_one_before_waits_for_it_and_both_are_accepted(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    for k in range(3):  # seqs 1, 2, 3, sealed while beta is down; then alpha is stopped
        alpha.client.submit_document("manifest", "beta", [person(k)], id=f"M-OT-{k}")
    assert alpha.stop() == 0
    with db(alpha) as con:
        sealed = dict(con.execute("SELECT seq, envelope FROM outbox_sent WHERE peer='beta'"))
    beta.start()
    answers: dict[int, tuple[int, bytes]] = {}
    _post(beta, sealed[1], answers, 1)  # beta now expects 2
    third = threading.Thread(target=_post, args=(beta, sealed[3], answers, 3))
    third.start()  # 3 first, on its own connection ...
    wait_for(lambda: metric(beta, "envelopes_held_total") >= 1, what="3 held, waiting for 2")
    _post(beta, sealed[2], answers, 2)  # ... then 2
    third.join(timeout=60)
    identity = alpha.home.peer_identity("beta")
    for seq in (1, 2, 3):
        status, body = answers[seq]
        assert status == 200, (seq, status)
        answer = transport.parse_answer(body, identity)
        assert (answer.result, answer.seq) == ("accepted", seq)
    with db(beta) as con:
        assert [s for (s,) in con.execute("SELECT seq FROM inbox ORDER BY seq")] == [1, 2, 3]
