"""The acknowledgement lifecycle and deadlines, through real daemons."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bridge.client import ApiError
from bridge.daemon.pair import Node

from .conftest import EventLog, wait_for


def _received(node: Node, doc_id: str) -> bool:
    return any(d["id"] == doc_id and d["state"] == "received"
               for d in node.client.documents(direction="in"))


def test_history_is_kept_and_forbidden_changes_are_refused(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    items = [{"id": f"BAG-{i}", "kind": "remains_package"} for i in range(3)]
    alpha.client.submit_document("manifest", "beta", items, id="M-LIFE")
    wait_for(lambda: _received(beta, "M-LIFE"), what="manifest at beta")
    b = beta.client
    b.acknowledge("M-LIFE", items=[{"id": "BAG-0", "status": "RECEIVED"},
                                   {"id": "BAG-1", "status": "PENDING_IDENTIFICATION"},
                                   {"id": "BAG-2", "status": "NOT_RECEIVED"}])
    b.acknowledge("M-LIFE", items=[{"id": "BAG-1", "status": "IDENTITY_CONFIRMED",
                                    "evidence": "DNA-1"},
                                   {"id": "BAG-9", "status": "RECEIVED_UNDECLARED"}])
    b.acknowledge("M-LIFE", items=[{"id": "BAG-9", "status": "PENDING_IDENTIFICATION"}])
    before = b.document("M-LIFE")

    # Confirmed identity cannot silently go back to "not received": 409 naming the item.
    with pytest.raises(ApiError) as info:
        b.acknowledge("M-LIFE", items=[{"id": "BAG-0", "status": "PENDING_IDENTIFICATION"},
                                       {"id": "BAG-1", "status": "NOT_RECEIVED"}])
    assert info.value.status == 409
    assert info.value.code == "transition_not_allowed"
    assert info.value.field == "items[1].status"
    assert "BAG-1" in info.value.message
    # An undeclared id must enter as RECEIVED_UNDECLARED.
    with pytest.raises(ApiError) as info:
        b.acknowledge("M-LIFE", items=[{"id": "BAG-77", "status": "RECEIVED"}])
    assert info.value.code == "unknown_item"
    # Nothing stored: no new acknowledgement document.
    assert [a["id"] for a in b.document("M-LIFE")["acks"]] == [a["id"] for a in before["acks"]]

    history = wait_for(lambda: (h := alpha.client.item("M-LIFE", "BAG-1")["history"])
                       and len(h) == 2 and h, what="BAG-1 history at alpha")
    assert [h["status"] for h in history] == ["PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED"]
    assert history[1]["evidence"] == "DNA-1"
    summary = wait_for(lambda: (d := alpha.client.document("M-LIFE"))["items"]["by_status"]
                       .get("PENDING_IDENTIFICATION") == 1 and d, what="undeclared at alpha")
    assert summary["items"]["by_status"]["RECEIVED"] == 1
    assert summary["items"]["by_status"]["IDENTITY_CONFIRMED"] == 1
    assert summary["items"]["by_status"]["NOT_RECEIVED"] == 1


def test_overdue_items_are_counted_and_raise_one_event(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes()
    for node in (alpha, beta):  # check often, so the test does not wait
        node.home.write_config(dataclasses.replace(node.home.config(),
                                                   deadline_check_seconds=0.2))
        node.start()
    alpha_events, beta_events = events(alpha), events(beta)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    alpha.client.submit_document("manifest", "beta",
                                 [{"id": f"P-{i}", "kind": "person"} for i in range(4)],
                                 id="M-DUE", meta={"ack_deadline": soon})
    wait_for(lambda: _received(beta, "M-DUE"), what="manifest at beta")
    beta.client.acknowledge("M-DUE", items=[{"id": "P-0", "status": "RECEIVED"}])
    event = alpha_events.wait("acknowledgement_overdue", id="M-DUE")
    assert event.data["overdue"] == 3
    assert beta_events.wait("acknowledgement_overdue", id="M-DUE").data["direction"] == "in"
    summary = alpha.client.document("M-DUE")
    assert summary["items"]["overdue"] == 3 and summary["deadline"]
    late = [i for i in alpha.client.items("M-DUE")["items"] if i["overdue"]]
    assert sorted(i["id"] for i in late) == ["P-1", "P-2", "P-3"]
    assert len(alpha_events.of_type("acknowledgement_overdue")) == 1


def test_a_malformed_deadline_is_refused_naming_the_field(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _ = make_nodes()
    alpha.start()
    with pytest.raises(ApiError) as info:
        alpha.client.submit_document("manifest", "beta", [{"id": "P-1"}], id="M-BAD",
                                     meta={"ack_deadline": "next tuesday"})
    assert info.value.status == 400 and info.value.field == "meta.ack_deadline"
    assert alpha.client.documents() == []


def test_a_deadline_or_number_out_of_range_is_refused_naming_the_field(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    """``9999-12-31`` (its end is in year 10000) was a 500; an offset past ±14:00, a deadline
    past the ten-year horizon and integers beyond JSON's exact range were taken, and the peer
    would then refuse the document. Each is a 400 naming the field, and nothing is stored."""
    alpha, _ = make_nodes()
    alpha.start()
    cases = [
        ({"ack_deadline": "9999-12-31"}, [{"id": "P-1"}], "meta.ack_deadline"),
        ({"ack_deadline": "9999-12-31T20:00:00-14:00"}, [{"id": "P-1"}], "meta.ack_deadline"),
        ({"ack_deadline": "2026-12-01T12:00:00+15:00"}, [{"id": "P-1"}], "meta.ack_deadline"),
        ({"ack_deadline": "2199-01-01"}, [{"id": "P-1"}], "meta.ack_deadline"),
        ({"batch": 2**60}, [{"id": "P-1"}], "meta.batch"),
        ({}, [{"id": "P-1"}, {"id": "P-2", "seals": [1, 2**53]}], "items[1].seals[1]"),
    ]
    for n, (meta, items, field) in enumerate(cases):
        with pytest.raises(ApiError) as info:
            alpha.client.submit_document("manifest", "beta", items, id=f"M-RANGE-{n}",
                                         meta=meta)
        assert (info.value.status, info.value.field) == (400, field), (meta, info.value)
    assert alpha.client.documents() == []
