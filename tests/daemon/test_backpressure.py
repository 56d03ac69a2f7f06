"""Backpressure: a peer's queue is bounded. With the peer down, a submission past the bound is
refused with 429 and a Retry-After, and stores nothing (no document, item, envelope, audit
record or event), as a JSON body and as a stream; ``bridge.client`` tries again after the
Retry-After a bounded number of times and then says why; once the peer is back and the queue
drains, the same submission is accepted. Real daemons, real socket, real HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import pytest

from bridge.client import ApiError, BridgeClient, UnixHTTPConnection
from bridge.daemon.pair import Node
from bridge.home.config import Delivery

from .conftest import FAST, db, metric, person, wait_for

BOUND = 2
TABLES = ("documents", "items", "outbox", "outbox_sent", "audit", "events", "ack_entries")


def _counts(node: Node) -> dict[str, int]:
    with db(node) as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in TABLES}


def _post(node: Node, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    conn = UnixHTTPConnection(str(node.home.socket_path), timeout=30)
    try:
        conn.request("POST", "/v1/documents", body=body, headers={"Content-Type": content_type})
        resp: http.client.HTTPResponse = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def full(make_nodes: Callable[..., tuple[Node, Node]]) -> tuple[Node, Node]:
    """Alpha with a queue to beta at its bound (beta down), and beta not started."""
    alpha, beta = make_nodes(delivery=Delivery(
        initial_backoff=FAST.initial_backoff, max_backoff=FAST.max_backoff,
        max_queued_envelopes=BOUND))
    alpha.start()
    for n in range(BOUND):  # one envelope each
        alpha.client.submit_document("manifest", "beta", [person(n)], id=f"M-BP-{n}")
    assert metric(alpha, "queue_depth") == BOUND
    # Its delivery loop has found beta down and said so (one peer_unreachable event), so that
    # the tables counted before and after a refusal change only by what the refusal stored.
    wait_for(lambda: _unreachable_told(alpha), what="alpha's peer_unreachable event")
    return alpha, beta


def _unreachable_told(node: Node) -> bool:
    with db(node) as con:
        return bool(con.execute("SELECT COUNT(*) FROM events WHERE type = 'peer_unreachable'"
                                ).fetchone()[0])


def test_a_submission_past_the_bound_is_refused_with_retry_after_and_stores_nothing(
        full: tuple[Node, Node]) -> None:
    alpha, _beta = full
    before = _counts(alpha)
    body = json.dumps({"type": "manifest", "to": "beta", "id": "M-BP-X",
                       "items": [person(9)]}).encode()
    status, headers, raw = _post(alpha, body, "application/json")
    assert status == 429
    error = json.loads(raw)["error"]
    assert (error["code"], error["field"]) == ("queue_full", "to")
    assert "nothing was stored" in error["message"]
    # The peer is down: no drain rate, so the delivery loop's longest backoff, in seconds.
    assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) >= 1
    # As a stream, refused on its header line, before any item is staged.
    lines = [json.dumps({"type": "manifest", "to": "beta", "id": "M-BP-S", "count": 2}),
             json.dumps(person(7)), json.dumps(person(8))]
    status, headers, raw = _post(alpha, ("\n".join(lines) + "\n").encode(),
                                 "application/x-ndjson")
    assert status == 429 and json.loads(raw)["error"]["code"] == "queue_full"
    assert "Retry-After" in headers
    assert alpha.stop() == 0
    assert _counts(alpha) == before


def test_the_client_tries_again_after_retry_after_then_names_the_full_queue(
        full: tuple[Node, Node]) -> None:
    alpha, _beta = full
    client = BridgeClient(str(alpha.home.socket_path), busy_tries=2, busy_wait=30)
    with pytest.raises(ApiError) as refused:
        client.submit_document("manifest", "beta", [person(9)], id="M-BP-X")
    err = refused.value
    assert (err.status, err.code) == (429, "queue_full")
    assert "tried 2 times" in err.message and err.retry_after is not None
    with pytest.raises(ApiError) as once:  # one try: the daemon's own answer, as it came
        BridgeClient(str(alpha.home.socket_path), busy_tries=1).submit_document(
            "manifest", "beta", [person(9)], id="M-BP-X")
    assert "tried" not in once.value.message
    assert sorted(d["id"] for d in alpha.client.documents(direction="out")) == [
        "M-BP-0", "M-BP-1"]  # tried three times in all, stored never


def test_once_the_peer_is_back_and_the_queue_drains_the_same_submission_is_accepted(
        full: tuple[Node, Node]) -> None:
    alpha, beta = full
    with pytest.raises(ApiError):
        BridgeClient(str(alpha.home.socket_path), busy_tries=1).submit_document(
            "manifest", "beta", [person(9)], id="M-BP-X")
    beta.start()
    # The client waits out each Retry-After (up to its bound) while beta takes the queue.
    answer = BridgeClient(str(alpha.home.socket_path), busy_tries=60, busy_wait=90
                          ).submit_document("manifest", "beta", [person(9)], id="M-BP-X")
    assert answer["id"] == "M-BP-X" and not answer.get("existing")
    wait_for(lambda: alpha.client.document("M-BP-X")["state"] == "delivered",
             what="alpha: the accepted document delivered")
    assert sorted(d["id"] for d in beta.client.documents(direction="in")) == [
        "M-BP-0", "M-BP-1", "M-BP-X"]
