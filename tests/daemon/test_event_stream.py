"""The local API's event stream (``GET /v1/events``): the events one commit adds (an
acknowledgement's ``item_status_changed`` and ``document_acknowledged``) go out in one write,
and still arrive as separate events, each with its own id, in the order of the log; resuming
with ``Last-Event-ID`` from any of them gives exactly the ones after it. Two real daemons."""

from __future__ import annotations

from collections.abc import Callable

from bridge.client import BridgeClient, DaemonUnavailable, Event
from bridge.daemon.pair import Node

from .conftest import EventLog


def stream(node: Node, after: str) -> list[Event]:
    """Every event after ``after``, read from one connection until it falls quiet."""
    seen: list[Event] = []
    try:
        for ev in BridgeClient(str(node.home.socket_path), timeout=5).events(
                after, read_timeout=0.5):
            seen.append(ev)
    except DaemonUnavailable:
        pass  # the read timeout: nothing more now
    return seen


def test_events_committed_together_arrive_whole_in_order_and_resume_after_any_of_them(
        make_nodes: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog]
) -> None:
    a, b = make_nodes(suites=(1, 1))
    a.start()
    b.start()
    at_a, at_b = events(a), events(b)
    for n in range(2):
        a.client.submit_document("manifest", "beta", [{"id": f"P-{n}", "kind": "person"}],
                                 id=f"EV-{n}")
        at_b.wait("document_received", id=f"EV-{n}")
        b.client.acknowledge(f"EV-{n}", all="RECEIVED")
        at_a.wait("document_acknowledged", id=f"EV-{n}")
    whole = stream(a, "0")
    ids = [int(ev.id or 0) for ev in whole]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] >= 1
    kinds = [(ev.type, ev.data.get("id")) for ev in whole]
    for n in range(2):
        # The commit that applied beta's acknowledgement added both: two events, in order.
        changed = next(i for i, ev in enumerate(whole)
                       if ev.type == "item_status_changed" and ev.data.get("document") == f"EV-{n}")
        assert ("document_acknowledged", f"EV-{n}") in kinds[changed + 1:], kinds
    assert all("raw" not in ev.data for ev in whole)  # no two events run together
    # Resumed between the two events of one commit, and after the first of the log.
    for k in (0, next(i for i, ev in enumerate(whole) if ev.type == "item_status_changed")):
        assert [e.id for e in stream(a, whole[k].id or "0")] == [e.id for e in whole[k + 1:]]
