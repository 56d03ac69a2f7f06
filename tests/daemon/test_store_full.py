"""A receiver whose store is full: a real daemon whose SQLite file meets a real SQLITE_FULL
(its page count capped with ``PRAGMA max_page_count`` by the tests' launcher, so no disk has
to be filled). It must answer with a signed ``unavailable`` bound to the envelope,
record nothing, say "degraded" in health and /metrics, and take the envelope once it can write
again; the sender backs off and tells its operator."""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Callable

import pytest

from bridge.client import ApiError
from bridge.core import answers as transport
from bridge.daemon.pair import LOOPBACK, Node

from .conftest import FAST, EventLog, db, metric, person, wait_for
from .launcher import command

ENVELOPE_TYPE = "application/vnd.bridge.envelope"


def post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        conn.request("POST", "/v1/envelopes", body=body, headers={"Content-Type": ENVELOPE_TYPE})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_full_store_answers_signed_unavailable_and_raises_an_alarm(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog],
        monkeypatch: pytest.MonkeyPatch) -> None:
    alpha, beta = make_nodes(delivery=FAST)
    beta.start()  # create beta's store, then cap it a few pages above what it holds
    assert beta.stop() == 0
    with db(beta) as con:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
    # The variable that once capped a daemon's store: read by no production code now.
    monkeypatch.setenv("BRIDGE_TEST_STORE_MAX_PAGES", "1")
    beta.command = command(beta.home.path, max_pages=pages + 4)
    beta.start()
    beta.command = None  # started again later: uncapped
    alpha.start()
    alpha_events = events(alpha)

    # About 100 KiB of entries: far more than four pages.
    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(300)],
                                 id="M-FULL-1")

    # The receiver: degraded, with the reason, in health and /metrics; nothing recorded.
    health = wait_for(lambda: (h := beta.client.health())["status"] == "degraded" and h,
                      what="beta: health degraded")
    assert "store_unavailable" in health["faults"]
    assert metric(beta, "store_unavailable_total") >= 1
    assert 'bridge_fault{fault="store_unavailable",party="beta"} 1' in beta.client.metrics()
    # The sender: backs off on it, and its operator hears that the peer cannot take it.
    wait_for(lambda: metric(alpha, "delivery_unavailable_total") >= 1,
             what="alpha: an unavailable answer")
    ev = alpha_events.wait("peer_unreachable", peer="beta")
    assert "cannot record" in ev.data["detail"]
    assert alpha.client.document("M-FULL-1")["state"] != "delivered"

    # The answer itself, to the very envelope alpha keeps sending: signed, bound to it.
    with db(alpha) as con:
        (data,) = con.execute("SELECT envelope FROM outbox_sent WHERE peer='beta' ORDER BY "
                              "seq LIMIT 1").fetchone()
    status, body = post(beta.port, data)
    assert status == 503
    answer = transport.parse_answer(body, alpha.home.peer_identity("beta"))
    assert (answer.result, answer.reason) == ("rejected", "unavailable")
    assert answer.envelope == hashlib.sha256(data).digest()
    assert beta.client.health()["status"] == "degraded"  # still serving its local API
    # Its own operator's submission: the server's fault, said as one (not a 400).
    with pytest.raises(ApiError) as err:
        beta.client.submit_document("manifest", "alpha", [person(n) for n in range(300)],
                                    id="M-FULL-B")
    assert (err.value.status, err.value.code) == (503, "store_unavailable")
    with db(beta) as con:
        assert con.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0

    # Room again (the cap lifted): the same envelope is taken, and the fault clears.
    assert beta.stop() == 0
    beta.start()
    alpha_events.wait("document_delivered", id="M-FULL-1")
    alpha_events.wait("peer_back", peer="beta")
    assert beta.client.health()["status"] == "ok"
    assert [d["id"] for d in beta.client.documents(direction="in")] == ["M-FULL-1"]
