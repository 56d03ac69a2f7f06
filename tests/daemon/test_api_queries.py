"""Listing and paging on the local API of a real daemon: documents newest first, a page at a
time with ``after``; filters; items a page at a time, by status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge.client import ApiError
from bridge.daemon.pair import Node

from .conftest import person, wait_for


def test_documents_and_items_page_by_page(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    ids = [f"M-PAGE-{n}" for n in range(5)]
    for n, doc_id in enumerate(ids):
        alpha.client.submit_document("roster" if n == 2 else "manifest", "beta",
                                     [person(i) for i in range(1, 4 + n)], id=doc_id)
    wait_for(lambda: {d["id"] for d in beta.client.documents(direction="in")
                      if d["state"] == "received"} == set(ids), what="beta: all received")
    newest_first = ids[::-1]

    for node, direction in ((alpha, "out"), (beta, "in")):
        assert [d["id"] for d in node.client.documents()] == newest_first
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            page = node.client.documents(direction=direction, limit=2, after=after)
            if not page:
                break
            assert len(pages) < 5, "paging does not move on"
            pages.append([d["id"] for d in page])
            after = page[-1]["id"]
        assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
        assert [d["id"] for d in node.client.documents(type="roster")] == ["M-PAGE-2"]
        assert [d["id"] for d in node.client.documents(type="manifest", limit=2,
                                                       after="M-PAGE-3")] == [
            "M-PAGE-1", "M-PAGE-0"]
        with pytest.raises(ApiError) as exc:
            node.client.documents(after="M-NOPE")
        assert (exc.value.status, exc.value.field) == (400, "after")
    assert alpha.client.documents(direction="in") == []
    assert alpha.client.documents(peer="nobody") == []

    # Items: pages of two, in document order; by status once some are acknowledged.
    items = list(beta.client.iter_items("M-PAGE-4", page_size=2))
    assert [i["id"] for i in items] == [f"P-{i:05d}" for i in range(1, 8)]
    first = beta.client.items("M-PAGE-4", limit=3)
    assert len(first["items"]) == 3 and first["next"] is not None
    beta.client.acknowledge("M-PAGE-4", items=[{"id": "P-00002", "status": "RECEIVED"},
                                               {"id": "P-00005", "status": "NOT_RECEIVED"}])
    assert [i["id"] for i in beta.client.items("M-PAGE-4", status="RECEIVED")["items"]] == [
        "P-00002"]
    wait_for(lambda: alpha.client.document("M-PAGE-4")["items"]["acknowledged"] == 2,
             what="alpha: the acknowledgement")
    assert [i["id"] for i in alpha.client.items("M-PAGE-4", status="NOT_RECEIVED")["items"]
            ] == ["P-00005"]
    assert [d["id"] for d in alpha.client.documents(type="ack")] == [
        alpha.client.document("M-PAGE-4")["acks"][0]["id"]]
    assert alpha.stop() == 0
    assert beta.stop() == 0
