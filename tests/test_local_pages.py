"""Keyset pages on the local API (a real Unix socket in front of a real engine and SQLite store,
``tests/harness``): a page boundary that falls between items of one status, or between two
documents of one id (sent and received), skips nothing and repeats nothing; a cursor that is no
cursor is a 400 naming ``after``, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire
from test_local_stream import Served

from bridge.client import ApiError, BridgeClient
from bridge.core.crypto.identity import PrivateIdentity

DISPUTED_AT = (1, 2, 3, 5, 8, 9, 10)  # runs of one status across every page boundary


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def _exchange(h: Harness) -> None:
    """Alpha sends M-PAGES (12 items) and D-SAME; beta sends its own D-SAME; beta disputes
    some of M-PAGES and takes the rest as RECEIVED, all delivered back."""
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(12)],
                doc_id="M-PAGES")
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="D-SAME")
    h.courier.settle()
    wire.submit(h.beta.engine, "manifest", "alpha", [person(2)], doc_id="D-SAME")
    wire.acknowledge(h.beta.engine, "M-PAGES", items=[
        {"id": f"P-{n:05d}", "status": "DISPUTED", "reason": "tag differs"}
        for n in DISPUTED_AT])
    wire.acknowledge(h.beta.engine, "M-PAGES", all="RECEIVED")
    h.courier.settle()


@pytest.mark.parametrize("page_size", [1, 2, 3, 5])
def test_a_status_page_boundary_inside_a_run_of_equal_statuses_skips_and_repeats_nothing(
        h: Harness, tmp_path: Path, page_size: int) -> None:
    _exchange(h)
    served = Served(h, tmp_path / "alpha.sock")
    try:
        client = BridgeClient(served.sock)
        disputed = list(client.iter_items("M-PAGES", status="DISPUTED", page_size=page_size))
        received = list(client.iter_items("M-PAGES", status="RECEIVED", page_size=page_size))
        first = client.items("M-PAGES", status="DISPUTED", limit=page_size)
    finally:
        served.close()
    assert [i["index"] for i in disputed] == list(DISPUTED_AT)
    assert {i["status"] for i in disputed} == {"DISPUTED"}
    assert [i["index"] for i in received] == [n for n in range(12) if n not in DISPUTED_AT]
    # The cursor is the last index served: the next page starts right after it.
    assert first["next"] == str(DISPUTED_AT[page_size - 1])


def test_two_documents_of_one_id_across_a_page_boundary_are_each_listed_once(
        h: Harness, tmp_path: Path) -> None:
    _exchange(h)
    served = Served(h, tmp_path / "alpha.sock")
    try:
        client = BridgeClient(served.sock)
        listed = [(d["id"], d["direction"]) for d in client.iter_documents(page_size=1)]
        first = client.documents_page(limit=1)
        # The older form of ``after`` (a document id) still answers.
        by_id = client.documents(after="M-PAGES")
    finally:
        served.close()
    assert listed == [("D-SAME", "in"), ("D-SAME", "out"), ("M-PAGES", "out")]
    assert first["next"] is not None and first["next"].startswith("~")
    assert by_id == []


NO_CURSORS = [("documents", c) for c in ("~", "~x", "~-1", "~1e3", "~²", "~" + "9" * 19)] + [
    ("items", c) for c in ("x", "-1", "1e3", "²", "9" * 19, "~3")]


@pytest.mark.parametrize(("listing", "cursor"), NO_CURSORS)
def test_a_cursor_that_is_no_cursor_is_refused_naming_after(
        h: Harness, tmp_path: Path, listing: str, cursor: str) -> None:
    _exchange(h)
    served = Served(h, tmp_path / "alpha.sock")
    client = BridgeClient(served.sock)
    try:
        with pytest.raises(ApiError) as err:
            if listing == "documents":
                client.documents_page(after=cursor)
            else:
                client.items("M-PAGES", status="DISPUTED", after=cursor)
    finally:
        served.close()
    assert (err.value.status, err.value.field) == (400, "after")
