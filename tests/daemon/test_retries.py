"""Retries are safe, and a bulk answer never overwrites a dispute.

The local API cannot tell a retry from a second request, and the caller of a call whose answer
was lost cannot tell whether it committed. So every mutating call is idempotent by content: the
same document id with the same content is the committed document; an acknowledgement that
restates exactly what each item already says records nothing; ``all`` means "every item not yet
acknowledged" unless the statuses to change are named.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from bridge.client import ApiError
from bridge.daemon.pair import Node

from .conftest import EventLog, db, person, wait_for


def _received(make_nodes: Callable[..., tuple[Node, Node]],
              events: Callable[[Node], EventLog], doc_id: str, n: int = 4
              ) -> tuple[Node, Node, EventLog]:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    alpha_events, beta_events = events(alpha), events(beta)
    alpha.client.submit_document("manifest", "beta", [person(i) for i in range(1, n + 1)],
                                 id=doc_id)
    beta_events.wait("document_received", id=doc_id)
    return alpha, beta, alpha_events


def _history(node: Node, doc_id: str, item_id: str) -> list[str]:
    return [h["status"] for h in node.client.item(doc_id, item_id)["history"]]


def _cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), *args],
        capture_output=True, text=True, timeout=60, check=False)


def test_ack_all_after_a_dispute_leaves_the_dispute_alone(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta, _alpha_events = _received(make_nodes, events, "M-RT-1")
    beta.client.acknowledge("M-RT-1", items=[
        {"id": "P-00002", "status": "DISPUTED", "reason": "tag differs"}])
    done = _cli(beta, "ack", "M-RT-1", "--all", "RECEIVED")
    assert done.returncode == 0, done.stderr
    assert "3 item(s)" in done.stdout and "3 not yet acknowledged" in done.stdout
    statuses = {i["id"]: i["status"] for i in beta.client.items("M-RT-1")["items"]}
    assert statuses == {"P-00001": "RECEIVED", "P-00002": "DISPUTED", "P-00003": "RECEIVED",
                        "P-00004": "RECEIVED"}

    # Changing statuses in bulk needs the flag that names what it changes, and says so.
    done = _cli(beta, "ack", "M-RT-1", "--all", "RECEIVED", "--including", "DISPUTED")
    assert done.returncode == 0, done.stderr
    assert "1 item(s)" in done.stdout and "1 from DISPUTED" in done.stdout
    assert _history(beta, "M-RT-1", "P-00002") == ["DISPUTED", "RECEIVED"]
    wait_for(lambda: _history(alpha, "M-RT-1", "P-00002") == ["DISPUTED", "RECEIVED"],
             what="alpha sees the dispute resolved")

    # Nothing left to change: exit 0, nothing signed, and the command says why.
    done = _cli(beta, "ack", "M-RT-1", "--all", "RECEIVED")
    assert done.returncode == 0, done.stderr
    assert "Nothing to acknowledge" in done.stdout
    with db(beta) as con:
        assert con.execute("SELECT COUNT(*) FROM documents WHERE type='ack'").fetchone()[0] == 3


def test_ack_retried_after_a_lost_answer_is_recorded_once(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta, alpha_events = _received(make_nodes, events, "M-RT-2")
    items = [{"id": "P-00001", "status": "RECEIVED"},
             {"id": "P-00003", "status": "DISPUTED", "reason": "tag differs"}]
    first = beta.client.acknowledge("M-RT-2", items=items)
    retry = beta.client.acknowledge("M-RT-2", items=items)  # the first answer "was lost"
    assert first["ack_id"] and first["items"] == 2
    assert retry == {"ack_id": None, "items": 0, "changed": {}}
    all_first = beta.client.acknowledge("M-RT-2", all="RECEIVED")
    all_retry = beta.client.acknowledge("M-RT-2", all="RECEIVED")
    assert all_first["items"] == 2 and all_retry["items"] == 0

    alpha_events.wait("document_acknowledged", id="M-RT-2")
    for node in (alpha, beta):
        wait_for(lambda n=node: _history(n, "M-RT-2", "P-00003") == ["DISPUTED"],
                 what="one entry in the item's history")
        assert _history(node, "M-RT-2", "P-00001") == ["RECEIVED"]
    with db(beta) as con:
        assert con.execute("SELECT COUNT(*) FROM documents WHERE type='ack'").fetchone()[0] == 2

    # A change of reason is a new statement, not a retry.
    again = beta.client.acknowledge("M-RT-2", items=[
        {"id": "P-00003", "status": "DISPUTED", "reason": "tag differs, seal broken"}])
    assert again["items"] == 1 and again["changed"] == {"DISPUTED": 1}


def test_send_retried_with_its_id_answers_the_committed_document(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, _beta, _ = _received(make_nodes, events, "M-RT-3", n=3)
    first = alpha.client.document("M-RT-3")
    retry = alpha.client.submit_document("manifest", "beta", [person(i) for i in (1, 2, 3)],
                                         id="M-RT-3")
    assert retry["existing"] is True and retry["digest"] == first["digest"]
    with db(alpha) as con:
        assert con.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1

    # The same id with other content is the conflict: one item changed, one missing.
    for items in ([person(1), person(2) | {"surname": "Othername"}, person(3)],
                  [person(1), person(2)]):
        with pytest.raises(ApiError) as err:
            alpha.client.submit_document("manifest", "beta", items, id="M-RT-3")
        assert err.value.status == 409 and err.value.code == "duplicate_document"


def test_ack_names_every_bad_item_not_only_the_first(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog], tmp_path) -> None:
    _, beta, _ = _received(make_nodes, events, "M-RT-4")
    items = [{"id": "P-00001", "status": "RECEIVED"},
             {"id": "P-09998", "status": "RECEIVED"},
             {"id": "P-00002", "status": "RECEIVED_UNDECLARED"},
             {"id": "P-09999", "status": "RECEIVED"}]
    with pytest.raises(ApiError) as err:
        beta.client.acknowledge("M-RT-4", items=items)
    assert err.value.field == "items[1].id" and "and 2 more items" in err.value.detail
    assert [f for f, _ in err.value.problems] == ["items[1].id", "items[2].status",
                                                  "items[3].id"]
    sheet = tmp_path / "acks.csv"
    sheet.write_text("id,status\n" + "".join(f"{i['id']},{i['status']}\n" for i in items))
    done = _cli(beta, "ack", "M-RT-4", "--file", str(sheet))
    assert done.returncode == 1
    assert "P-09998" in done.stderr and "P-09999" in done.stderr
    assert beta.client.document("M-RT-4")["items"]["acknowledged"] == 0  # nothing recorded
