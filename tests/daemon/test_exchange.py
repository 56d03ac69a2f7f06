"""The exchange end to end between two real daemons: a manifest and a roster sent, received,
acknowledged item by item (statuses that change over time, with their history), a large document
in several chunks, the event stream, and a clean SIGTERM shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.daemon.pair import Node
from bridge.home.config import Delivery

from .conftest import FAST, EventLog, db, person, wait_for

MANIFEST_META = {"agreement": "AGR-TEST-1", "batch": 3, "handover_point": "Test point A",
                 "agreed_date": "2026-03-01", "transport": "bus"}


def data_of(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "id"}


def state_of(node: Node, doc_id: str) -> str:
    return str(node.client.document(doc_id)["state"])


def test_manifest_acknowledged_item_by_item(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    alpha_events, beta_events = events(alpha), events(beta)

    sent = [person(n) for n in range(1, 7)]
    answer = alpha.client.submit_document("manifest", "beta", sent, meta=MANIFEST_META,
                                          id="M-EX-1")
    assert answer["id"] == "M-EX-1" and answer["items"] == 6 and answer["to"] == "beta"

    # -- received by beta, with the item data visible
    received = beta_events.wait("document_received", id="M-EX-1")
    assert received.data == {"id": "M-EX-1", "type": "manifest", "peer": "alpha", "items": 6}
    inbound = beta.client.documents(direction="in")
    assert [d["id"] for d in inbound] == ["M-EX-1"]
    doc = inbound[0]
    assert (doc["type"], doc["peer"], doc["state"], doc["direction"]) == (
        "manifest", "alpha", "received", "in")
    assert doc["meta"] == MANIFEST_META
    assert doc["digest"] == answer["digest"]
    assert doc["items"]["total"] == 6 and doc["items"]["acknowledged"] == 0
    items = beta.client.items("M-EX-1")["items"]
    assert [i["id"] for i in items] == [p["id"] for p in sent]
    assert [i["data"] for i in items] == [data_of(p) for p in sent]
    assert all(i["status"] == "unacknowledged" for i in items)
    alpha_events.wait("document_delivered", id="M-EX-1")
    wait_for(lambda: state_of(alpha, "M-EX-1") == "delivered", what="alpha: delivered")

    # -- first acknowledgement: a mix of statuses, one undeclared item, two items left open
    first = beta.client.acknowledge("M-EX-1", items=[
        {"id": "P-00001", "status": "RECEIVED"},
        {"id": "P-00002", "status": "DISPUTED", "reason": "date of birth does not match",
         "evidence": "report TEST-17"},
        {"id": "P-00003", "status": "NOT_OWN_NATIONAL", "reason": "holds another nationality"},
        {"id": "P-00004", "status": "PENDING_IDENTIFICATION"},
        {"id": "X-UNDECLARED-1", "status": "RECEIVED_UNDECLARED",
         "reason": "arrived with the batch, not on the manifest"},
    ])
    assert first["items"] == 5
    mine = beta.client.document("M-EX-1")
    assert mine["state"] == "received"  # two items still have no status
    assert mine["items"]["acknowledged"] == 4

    def first_ack_in() -> dict[str, Any] | None:
        d = alpha.client.document("M-EX-1")
        return d if [a["id"] for a in d["acks"] if a["state"] == "received"] == [
            first["ack_id"]] else None

    at_alpha = wait_for(first_ack_in, what="the first acknowledgement at alpha")
    assert at_alpha is not None
    assert at_alpha["state"] == "delivered"  # not every item has a status yet
    assert at_alpha["items"]["acknowledged"] == 4
    assert at_alpha["items"]["by_status"] == {
        "RECEIVED": 1, "DISPUTED": 1, "NOT_OWN_NATIONAL": 1, "PENDING_IDENTIFICATION": 1,
        "RECEIVED_UNDECLARED": 1, "delivered": 2}
    assert at_alpha["acks"][0]["items"] == 5 and at_alpha["acks"][0]["direction"] == "in"
    disputed = alpha.client.item("M-EX-1", "P-00002")
    assert (disputed["status"], disputed["reason"], disputed["evidence"]) == (
        "DISPUTED", "date of birth does not match", "report TEST-17")
    assert "data" not in disputed  # our own record is not echoed on the sending side
    assert [h["ack_id"] for h in disputed["history"]] == [first["ack_id"]]
    assert alpha.client.item("M-EX-1", "P-00003")["reason"] == "holds another nationality"
    assert alpha.client.item("M-EX-1", "P-00005")["status"] == "delivered"
    assert alpha.client.item("M-EX-1", "P-00005")["history"] == []
    changed = alpha_events.wait("item_status_changed", ack=first["ack_id"])
    assert changed.data["document"] == "M-EX-1" and changed.data["items"] == 5

    # -- second acknowledgement: the pending item and the undeclared one are identified, the
    # last two get a status
    second = beta.client.acknowledge("M-EX-1", items=[
        {"id": "P-00004", "status": "IDENTITY_CONFIRMED", "evidence": "match report TEST-9"},
        {"id": "P-00005", "status": "RECEIVED"},
        {"id": "P-00006", "status": "NOT_RECEIVED", "reason": "not at the handover point"},
        {"id": "X-UNDECLARED-1", "status": "IDENTITY_CONFIRMED"},
    ])
    assert second["items"] == 4
    assert state_of(beta, "M-EX-1") == "acknowledged"
    done = alpha_events.wait("document_acknowledged", id="M-EX-1")
    assert done.data == {"id": "M-EX-1", "peer": "beta", "items": 6}

    final = alpha.client.document("M-EX-1")
    assert final["state"] == "acknowledged"
    assert final["items"]["total"] == 6 and final["items"]["acknowledged"] == 6
    # Counted by latest status, the undeclared item too (it is no longer RECEIVED_UNDECLARED).
    assert final["items"]["by_status"] == {
        "RECEIVED": 2, "DISPUTED": 1, "NOT_OWN_NATIONAL": 1, "IDENTITY_CONFIRMED": 2,
        "NOT_RECEIVED": 1}
    assert beta.client.document("M-EX-1")["items"]["by_status"] == final["items"]["by_status"]
    assert [a["id"] for a in final["acks"]] == [first["ack_id"], second["ack_id"]]
    assert {i["id"]: i["status"] for i in alpha.client.items("M-EX-1")["items"]} == {
        "P-00001": "RECEIVED", "P-00002": "DISPUTED", "P-00003": "NOT_OWN_NATIONAL",
        "P-00004": "IDENTITY_CONFIRMED", "P-00005": "RECEIVED", "P-00006": "NOT_RECEIVED"}
    assert [i["id"] for i in alpha.client.items("M-EX-1", status="RECEIVED")["items"]] == [
        "P-00001", "P-00005"]

    # The item whose status changed keeps its whole history, on both sides.
    for side in (alpha, beta):
        changed_item = side.client.item("M-EX-1", "P-00004")
        assert changed_item["status"] == "IDENTITY_CONFIRMED"
        assert changed_item["evidence"] == "match report TEST-9"
        assert [(h["status"], h["ack_id"], h["evidence"]) for h in changed_item["history"]] == [
            ("PENDING_IDENTIFICATION", first["ack_id"], None),
            ("IDENTITY_CONFIRMED", second["ack_id"], "match report TEST-9")]
        assert all(h["at"] for h in changed_item["history"])
    assert [h["status"] for h in alpha.client.item("M-EX-1", "P-00002")["history"]] == [
        "DISPUTED"]

    # -- a roster too, acknowledged in one go
    roster = [person(n) | {"id": f"R-{n}"} for n in range(1, 4)]
    alpha.client.submit_document("roster", "beta", roster, id="R-EX-1",
                                 meta={"category": "civilian detainees"})
    beta_events.wait("document_received", id="R-EX-1", type="roster")
    assert [i["data"] for i in beta.client.items("R-EX-1")["items"]] == [
        data_of(p) for p in roster]
    beta.client.acknowledge("R-EX-1", all="RECEIVED")
    alpha_events.wait("document_acknowledged", id="R-EX-1")
    r = alpha.client.document("R-EX-1")
    assert (r["type"], r["state"], r["items"]["acknowledged"], r["items"]["by_status"]) == (
        "roster", "acknowledged", 3, {"RECEIVED": 3})
    assert {d["id"] for d in beta.client.documents(direction="in")} == {"M-EX-1", "R-EX-1"}

    # -- both stop cleanly on SIGTERM
    assert alpha.stop() == 0
    assert beta.stop() == 0
    for side in (alpha, beta):
        with db(side) as con:
            assert con.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0


def test_large_document_travels_in_chunks(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    n_items = 20_000
    alpha, beta = make_nodes(delivery=Delivery(
        chunk_items=4096, initial_backoff=FAST.initial_backoff, max_backoff=FAST.max_backoff))
    alpha.start()
    beta.start()
    alpha_events, beta_events = events(alpha), events(beta)
    sent = [person(n) for n in range(n_items)]
    answer = alpha.client.submit_document("manifest", "beta", sent, id="M-LARGE")
    assert answer["items"] == n_items
    beta_events.wait("document_received", id="M-LARGE")
    alpha_events.wait("document_delivered", id="M-LARGE")

    got = list(beta.client.iter_items("M-LARGE", page_size=5000))
    assert [i["id"] for i in got] == [p["id"] for p in sent]
    assert [i["index"] for i in got] == list(range(n_items))
    assert all(i["data"] == data_of(p) for i, p in zip(got, sent, strict=True))
    doc = beta.client.document("M-LARGE")
    assert doc["state"] == "received" and doc["items"]["by_status"] == {"unacknowledged": n_items}

    beta.client.acknowledge("M-LARGE", all="RECEIVED")
    alpha_events.wait("document_acknowledged", id="M-LARGE")
    out = alpha.client.document("M-LARGE")
    assert out["items"]["acknowledged"] == n_items
    assert out["items"]["by_status"] == {"RECEIVED": n_items}

    assert alpha.stop() == 0
    assert beta.stop() == 0
    # 20,000 entries in chunks of 4,096: five envelopes, accepted once each, in order.
    with db(alpha) as con:
        rows = con.execute(
            "SELECT o.seq, o.first, o.n, o.state FROM outbox o JOIN documents d "
            "ON d.rowid = o.doc WHERE d.id = 'M-LARGE' ORDER BY o.seq").fetchall()
    assert [(first, n) for _, first, n, _ in rows] == [
        (0, 4096), (4096, 4096), (8192, 4096), (12288, 4096), (16384, 3616)]
    assert {state for *_, state in rows} == {"delivered"}
    with db(beta) as con:
        inbox = con.execute("SELECT seq, result FROM inbox WHERE peer='alpha' ORDER BY seq"
                            ).fetchall()
        assert inbox == [(seq, "accepted") for seq, *_ in rows]
        assert con.execute("SELECT stored, count FROM documents WHERE id='M-LARGE'"
                           ).fetchall() == [(n_items, n_items)]
