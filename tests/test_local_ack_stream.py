"""A listed acknowledgement submitted as a stream (``application/x-ndjson``) to the local API on
a real Unix socket, in front of a real engine and SQLite store (``tests/harness``): signed and
committed whole, as the JSON body's would be, and delivered; a bad entry at the very end, an
item listed twice in different batches, an item the document never declared, or a stream that
lists nothing refuses all of it, naming the entry, and leaves nothing behind; ``bridge.client``
streams a large (or unsized) list by itself."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire
from test_local_stream import Served

from bridge import client as client_module
from bridge.client import ApiError, BridgeClient
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import InputError
from bridge.engine import ack_stream
from bridge.engine.store_check import check_all
from bridge.local import stream as stream_module

DOC = "M-ACKS"


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    """Alpha has received beta's 12-item manifest DOC, none of it acknowledged."""
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.beta.engine, "manifest", "alpha", [person(n) for n in range(12)],
                    doc_id=DOC)
        harness.courier.settle()
        yield harness


@pytest.fixture
def served(h: Harness, tmp_path: Path) -> Iterator[Served]:
    """Alpha's local API on a Unix socket (closed again at the end)."""
    api = Served(h, tmp_path / "alpha.sock")
    try:
        yield api
    finally:
        api.close()


def _left_behind(h: Harness) -> dict[str, int]:
    q = wire.sql(h.alpha.engine).execute
    return {table: q(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("documents", "ack_entries", "outbox", "audit")} | {
        "statuses": q("SELECT COUNT(*) FROM items WHERE status IS NOT NULL").fetchone()[0],
        "staged": q("SELECT COUNT(*) FROM sqlite_temp_master WHERE type='table'").fetchone()[0]}


def _nothing_added(h: Harness, served: Served, before: dict[str, int]) -> None:
    assert served.on_db(lambda: _left_behind(h)) == before


def _listed(n: int) -> list[dict[str, Any]]:
    return [{"id": f"P-{i:05d}", "status": "DISPUTED" if i % 3 else "RECEIVED",
             "reason": "tag differs" if i % 3 else None} for i in range(n)]


def test_a_streamed_listed_acknowledgement_is_committed_whole_and_delivered(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 5)  # three batches
    client = BridgeClient(served.sock)
    client.acknowledge(DOC, items=[{"id": "P-00000", "status": "RECEIVED"}])  # JSON, first
    answer = client.acknowledge_stream(DOC, iter(_listed(12)))
    # P-00000 already says RECEIVED: restating it states nothing, as in a JSON body.
    assert answer["items"] == 11 and answer["ack_id"]
    assert answer["changed"] == {"unacknowledged": 11}
    store = h.alpha.engine.store
    assert served.on_db(lambda: check_all(store.check_rows())) == []  # what was signed
    assert served.on_db(lambda: _left_behind(h))["staged"] == 0
    served.close()
    h.courier.settle()
    got = {i["id"]: (i["status"], i["reason"]) for i in wire.items(h.beta.engine, DOC, "out")}
    assert got == {i["id"]: (i["status"], i["reason"]) for i in _listed(12)}
    assert wire.document(h.beta.engine, DOC, "out")["items"]["acknowledged"] == 12
    assert check_all(h.beta.engine.store.check_rows()) == []


@pytest.mark.parametrize(("bad", "field"), [
    ({"id": "P-00011", "status": "MAYBE"}, "items[11].status"),
    ({"id": "P-99999", "status": "RECEIVED"}, "items[11].id"),  # never declared
    ({"id": "P-00001", "status": "RECEIVED"}, "items[11].id"),  # listed in batch one already
])
def test_a_bad_entry_in_the_last_batch_refuses_all_of_it_and_names_it(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch, bad: dict[str, Any],
        field: str) -> None:
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 5)
    before = served.on_db(lambda: _left_behind(h))
    entries = [*_listed(11), bad]
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).acknowledge_stream(DOC, entries)
    assert (err.value.status, err.value.field) == (400, field), err.value
    _nothing_added(h, served, before)


@pytest.mark.parametrize(("body", "field"), [
    (b"{}\n", "items"),  # a header and no entry
    (b'{"all": "RECEIVED"}\n', "all"),  # the all form is never streamed
    (b'[]\n{"id": "P-00001", "status": "RECEIVED"}\n', "$"),
])
def test_a_stream_with_no_entries_or_no_header_is_refused_and_changes_nothing(
        h: Harness, served: Served, body: bytes, field: str) -> None:
    before = served.on_db(lambda: _left_behind(h))
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock)._json("POST", f"/v1/documents/{DOC}/acks", stream=[body])
    assert (err.value.status, err.value.field) == (400, field)
    _nothing_added(h, served, before)


def test_a_line_that_is_not_json_is_named_by_its_entry(h: Harness, served: Served) -> None:
    before = served.on_db(lambda: _left_behind(h))
    body = b'{}\n{"id": "P-00001", "status": "RECEIVED"}\n{"id": "P-00002", \n'
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock)._json("POST", f"/v1/documents/{DOC}/acks", stream=[body])
    assert (err.value.status, err.value.code, err.value.field) == (400, "bad_json", "items[1]")
    _nothing_added(h, served, before)


def test_an_acknowledgement_made_meanwhile_refuses_the_stream(h: Harness) -> None:
    engine = h.alpha.engine
    streamed = engine.begin_ack_stream(DOC, {})
    engine.ack_stream_items(streamed, [{"id": "P-00001", "status": "RECEIVED"}])
    wire.acknowledge(engine, DOC, items=[{"id": "P-00001", "status": "NOT_RECEIVED"}])
    with pytest.raises(InputError, match="acknowledged meanwhile"):
        engine.finish_ack_stream(streamed)
    engine.abort_ack_stream(streamed)
    assert wire.item(engine, DOC, "P-00001")["status"] == "NOT_RECEIVED"


def test_the_client_streams_a_large_or_unsized_list_by_itself(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(client_module, "STREAM_FROM", 4)
    client = BridgeClient(served.sock)
    with caplog.at_level(logging.INFO, logger="bridge.exchange"):
        small = client.acknowledge(DOC, items=_listed(4))
        big = client.acknowledge(DOC, items=_listed(12)[4:9])
        unsized = client.acknowledge(DOC, items=iter(_listed(12)[9:]))
    assert (small["items"], big["items"], unsized["items"]) == (4, 5, 3)
    streamed = [r.getMessage() for r in caplog.records if "(streamed)" in r.getMessage()]
    assert len(streamed) == 2


def test_a_stream_of_more_items_than_a_json_body_may_list_is_refused(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ack_stream, "MAX_STREAMED_ITEMS", 10)
    before = served.on_db(lambda: _left_behind(h))
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).acknowledge_stream(DOC, _listed(12))
    assert (err.value.status, err.value.code, err.value.field) == (413, "too_large",
                                                                   "items[10]")
    _nothing_added(h, served, before)


def _given(n: int) -> list[dict[str, Any]]:
    """``_listed`` as the engine is handed it: no null member (the client leaves them out)."""
    return [{k: v for k, v in raw.items() if v is not None} for raw in _listed(n)]


def test_a_stream_whose_batch_was_refused_takes_nothing_more_and_signs_nothing(
        h: Harness) -> None:
    """A caller of the engine that goes on after a refused batch (an item listed twice, the
    batch's earlier entries already made) gets the refusal again, never an acknowledgement
    missing that batch."""
    engine = h.alpha.engine
    before = _left_behind(h)
    streamed = engine.begin_ack_stream(DOC, {})
    engine.ack_stream_items(streamed, _given(4))
    with pytest.raises(InputError) as err:
        engine.ack_stream_items(streamed, [*_given(6)[4:], {"id": "P-00002",
                                                             "status": "RECEIVED"}])
    assert err.value.field == "items[6].id"
    with pytest.raises(InputError, match="refused already"):
        engine.ack_stream_items(streamed, _given(8)[6:])
    with pytest.raises(InputError, match="refused already"):
        engine.finish_ack_stream(streamed)
    assert _left_behind(h) == before


def test_a_stream_that_only_restates_signs_nothing_and_leaves_no_stage(h: Harness) -> None:
    engine = h.alpha.engine
    wire.acknowledge(engine, DOC, items=_given(3))
    before = _left_behind(h)
    streamed = engine.begin_ack_stream(DOC, {})
    engine.ack_stream_items(streamed, _given(3))
    assert engine.finish_ack_stream(streamed) == {"ack_id": None, "items": 0, "changed": {}}
    assert _left_behind(h) == before and before["staged"] == 0
