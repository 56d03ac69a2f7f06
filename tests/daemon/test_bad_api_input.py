"""Bad input on the local API socket: each case gets a 4xx with
``{"error": {"code", "message", "field"}}`` naming the field, changes nothing in the store, and
leaves the daemon healthy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bridge.client import ApiError, UnixHTTPConnection
from bridge.daemon.pair import Node

from .conftest import EventLog, db, metric, person, wait_for


def request(node: Node, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    """A raw request on the daemon's Unix socket (the client library would refuse to send
    some of these)."""
    conn = UnixHTTPConnection(str(node.home.socket_path), timeout=30)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def snapshot(node: Node) -> dict[str, Any]:
    """Everything the local API says about the store."""
    c = node.client
    docs = c.documents() + c.documents(type="ack")
    return {
        "documents": docs,
        "details": {(d["id"], d["direction"]): c.document(d["id"], d["direction"])
                    for d in docs},
        "items": {d["id"]: c.items(d["id"])["items"] for d in docs if d["type"] != "ack"},
        "queue_depth": metric(node, "queue_depth"),
        "envelopes": metric(node, "envelopes_received"),
    }


def manifest(**override: Any) -> bytes:
    body: dict[str, Any] = {"type": "manifest", "to": "beta",
                            "items": [person(1), person(2), person(3)]}
    body.update(override)
    return json.dumps(body).encode()


def without(key: str) -> bytes:
    body = json.loads(manifest())
    del body[key]
    return json.dumps(body).encode()


def ack(*items: dict[str, Any]) -> bytes:
    return json.dumps({"items": list(items)}).encode()


# (name, which node, method, path, body, status (or the statuses allowed), code or None, field)
CASES: list[tuple[str, str, str, str, bytes | None, int | tuple[int, ...], str | None,
                  str | None]] = [
    ("malformed JSON", "alpha", "POST", "/v1/documents", b'{"type": "manifest", "to": ',
     400, "bad_json", "$"),
    ("not UTF-8", "alpha", "POST", "/v1/documents", b'{"to": "\xff"}', 400, "bad_json", "$"),
    ("not JSON content", "alpha", "POST", "/v1/documents", None, 400, "bad_content_type", "$"),
    ("items not a list", "alpha", "POST", "/v1/documents", manifest(items={"id": "P-1"}),
     400, None, "items"),
    ("missing to", "alpha", "POST", "/v1/documents", without("to"), 400, None, "to"),
    ("missing items", "alpha", "POST", "/v1/documents", without("items"), 400, None, "items"),
    ("unknown field", "alpha", "POST", "/v1/documents", manifest(colour="blue"),
     400, None, "colour"),
    ("unknown type", "alpha", "POST", "/v1/documents", manifest(type="letter"),
     400, None, "type"),
    ("unknown peer", "alpha", "POST", "/v1/documents", manifest(to="gamma"),
     404, "unknown_peer", "to"),
    ("bad peer name", "alpha", "POST", "/v1/documents", manifest(to="Gamma Party"),
     400, None, "to"),
    ("duplicate item id", "alpha", "POST", "/v1/documents",
     manifest(items=[person(1), person(2), person(1)]), 400, None, "items[2].id"),
    ("item without id", "alpha", "POST", "/v1/documents",
     manifest(items=[person(1), {"surname": "Testname"}]), 400, None, "items[1].id"),
    ("bad item id", "alpha", "POST", "/v1/documents",
     manifest(items=[person(1), person(2) | {"id": "P 2\n"}]), 400, None, "items[1].id"),
    ("float in item data", "alpha", "POST", "/v1/documents",
     manifest(items=[person(1), person(2) | {"weight_kg": 71.5}]), 400, None,
     "items[1].weight_kg"),
    ("integral float in item data", "alpha", "POST", "/v1/documents",
     manifest(items=[person(1), person(2) | {"weight_kg": 71.0}]), 400, None,
     "items[1].weight_kg"),
    ("float nested in meta", "alpha", "POST", "/v1/documents",
     manifest(meta={"transport": {"capacity": 2.0}}), 400, None, "meta.transport.capacity"),
    ("document id reused for other content", "alpha", "POST", "/v1/documents",
     manifest(id="M-BAD-1", items=[person(1), person(2)]), 409, "duplicate_document", "id"),
    ("unknown ack status", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002", "status": "RECEIVED"}, {"id": "P-00003", "status": "LOST"}),
     400, None, "items[1].status"),
    ("ack of an item not in the document", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002", "status": "RECEIVED"}, {"id": "P-09999", "status": "RECEIVED"}),
     400, "unknown_item", "items[1].id"),
    ("ack item without status", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002"}), 400, None, "items[0].status"),
    ("ack with an unknown field", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002", "status": "RECEIVED", "colour": "blue"}), 400, None,
     "items[0].colour"),
    ("ack with items not a list", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     json.dumps({"items": "P-00001"}).encode(), 400, None, "items"),
    ("ack with duplicate item ids", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002", "status": "RECEIVED"}, {"id": "P-00002", "status": "DISPUTED"}),
     400, None, "items[1].id"),
    ("ack of a declared item as undeclared", "beta", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00002", "status": "RECEIVED_UNDECLARED"}), (400, 409), None,
     "items[0].status"),
    ("ack on an outbound document", "alpha", "POST", "/v1/documents/M-BAD-1/acks",
     ack({"id": "P-00001", "status": "RECEIVED"}), 409, "not_inbound", "id"),
    ("ack on an acknowledgement", "alpha", "POST", "/v1/documents/{ack_id}/acks",
     ack({"id": "P-00001", "status": "RECEIVED"}), 409, "not_inbound", "id"),
    ("ack on an unknown document", "beta", "POST", "/v1/documents/M-NOPE/acks",
     ack({"id": "P-00001", "status": "RECEIVED"}), 404, "not_found", "id"),
    ("unknown document", "alpha", "GET", "/v1/documents/M-NOPE", None, 404, "not_found", "id"),
    ("items of an unknown document", "alpha", "GET", "/v1/documents/M-NOPE/items", None,
     404, "not_found", "id"),
    ("unknown item", "alpha", "GET", "/v1/documents/M-BAD-1/items/P-09999", None,
     404, "not_found", "item_id"),
    ("limit not a number", "alpha", "GET", "/v1/documents?limit=abc", None, 400, None, "limit"),
    ("limit zero", "alpha", "GET", "/v1/documents?limit=0", None, 400, None, "limit"),
    ("limit too large", "beta", "GET", "/v1/documents/M-BAD-1/items?limit=99999999", None,
     400, None, "limit"),
    ("bad direction", "alpha", "GET", "/v1/documents?direction=sideways", None, 400, None,
     "direction"),
    ("bad type filter", "alpha", "GET", "/v1/documents?type=letter", None, 400, None, "type"),
    ("bad page cursor", "beta", "GET", "/v1/documents/M-BAD-1/items?after=abc", None,
     400, None, "after"),
    ("unknown status filter", "beta", "GET", "/v1/documents/M-BAD-1/items?status=LOST", None,
     400, None, "status"),
    ("bad event id", "alpha", "GET", "/v1/events?after=abc", None, 400, None, "after"),
]


def check_case(node: Node, method: str, path: str, body: bytes | None,
               status: int | tuple[int, ...], code: str | None, field: str | None,
               content_type: str) -> None:
    got_status, answer = request(node, method, path, body, content_type)
    assert set(answer) == {"error"}, answer
    err = answer["error"]
    assert set(err) == {"code", "message", "field"}, err
    assert err["field"] == field, err
    assert got_status in (status if isinstance(status, tuple) else (status,)), (got_status, err)
    if code is not None:
        assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err


def test_bad_input_is_refused_and_changes_nothing(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    # A manifest sent, received and partly acknowledged; then nothing moves any more.
    alpha.client.submit_document("manifest", "beta", [person(1), person(2), person(3)],
                                 id="M-BAD-1")
    wait_for(lambda: [d["state"] for d in beta.client.documents(direction="in")] == [
        "received"], what="beta: M-BAD-1 received")
    ack_id = beta.client.acknowledge("M-BAD-1", items=[{"id": "P-00001",
                                                        "status": "RECEIVED"}])["ack_id"]
    wait_for(lambda: alpha.client.document("M-BAD-1")["items"]["acknowledged"] == 1,
             what="alpha: the acknowledgement")
    wait_for(lambda: metric(alpha, "queue_depth") + metric(beta, "queue_depth") == 0,
             what="empty outboxes")
    nodes = {"alpha": alpha, "beta": beta}
    failures = []
    for name, side, method, path, body, status, code, field in CASES:
        content_type = "application/json"
        if name == "not JSON content":
            body, content_type = b"type=manifest&to=beta", "application/x-www-form-urlencoded"
        before = [snapshot(n) for n in nodes.values()]
        try:
            check_case(nodes[side], method, path.format(ack_id=ack_id), body, status, code,
                       field, content_type)
            assert [snapshot(n) for n in nodes.values()] == before, "the store changed"
            for n in nodes.values():
                assert n.client.health()["status"] == "ok"
        except AssertionError as failure:
            failures.append(f"{name}: {failure}")
    assert not failures, "\n".join(failures)

    # The same answers through the client library: ApiError with status, code and field.
    with pytest.raises(ApiError) as exc:
        alpha.client.submit_document("manifest", "gamma", [person(1)])
    assert (exc.value.status, exc.value.code, exc.value.field) == (404, "unknown_peer", "to")
    with pytest.raises(ApiError) as exc:
        alpha.client.submit_document("manifest", "beta", [person(1), person(1)])
    assert (exc.value.status, exc.value.field) == (400, "items[1].id")

    # None of the refused requests left an event or a refusal behind.
    for node in (alpha, beta):
        log = events(node)
        log.wait("document_received" if node is beta else "document_delivered", id="M-BAD-1")
        assert not {e.type for e in log.events} & {"document_refused", "security_alarm"}
    assert [d["id"] for d in alpha.client.documents()] == ["M-BAD-1"]
    assert alpha.stop() == 0
    assert beta.stop() == 0
    for node in (alpha, beta):
        with db(node) as con:
            assert con.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
