"""Item transport states as data (``bridge/engine/states.py``): every change of an item's
transport the engine makes, in a real exchange between two engines (``tests/harness``), is one
``ITEM_TRANSPORT_TRANSITIONS`` allows, and the table's states are the ones the store and the
local API know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.states import (
    ITEM_TRANSPORT_TRANSITIONS,
    ItemTransport,
    TransitionRefused,
    check_items,
)
from bridge.local.api import ITEM_STATES
from bridge.store.sqlite.items import TRANSPORT_STATES

Change = tuple[str | None, str]


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def recorded(engine: wire.Engine, monkeypatch: pytest.MonkeyPatch) -> list[Change]:
    """Every (stored transport before, after) of the items the engine writes, read on the
    store's own connection (inside the engine's transaction, as the change sees it)."""
    store, conn, changes = engine.store, wire.sql(engine), []

    def states(doc: int, first: int, end: int) -> set[str]:
        return {r[0] for r in conn.execute("SELECT transport FROM items WHERE doc=? AND idx>=? "
                                           "AND idx<?", (doc, first, end))}

    def wrap(name: str, born: Any) -> None:
        real = getattr(store, name)

        def call(*args: Any) -> None:
            if name == "set_transport":
                doc, first, n, new = args
                changes.extend((old, new) for old in states(doc, first, first + n))
            if name == "insert_items":  # rows of (doc, idx, id, leaf, leaf hash, transport)
                args = (rows := list(args[0]),)
                changes.extend((None, row[5]) for row in rows)
            real(*args)
            changes.extend((None, new) for new in born(*args))
        monkeypatch.setattr(store, name, call)

    wrap("set_transport", lambda *args: ())
    wrap("insert_items", lambda rows: ())
    wrap("publish_stage", lambda stage, doc, transport, first, n: [transport])
    wrap("insert_received_items",
         lambda doc, first, columns: states(doc, first, first + len(columns[0])))
    return changes


def test_every_item_transport_change_of_an_exchange_is_in_the_table(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    sender, receiver = recorded(h.alpha.engine, monkeypatch), recorded(h.beta.engine,
                                                                        monkeypatch)
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                doc_id="M-1")  # three envelopes
    h.courier.batch(h.alpha, 3, lose=[1])  # the second lost: a gap, the rest rewound
    h.courier.settle()
    wire.submit(h.alpha.engine, "roster", "beta", [person(n) for n in range(20, 23)],
                doc_id="R-1", meta={"category": "civilian detainees"})
    h.courier.settle()
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    h.courier.settle()
    seen = set(sender + receiver)
    assert {(None, "queued"), ("queued", "sent"), ("sent", "delivered"),
            (None, "unacknowledged")} <= seen
    table = {(None if a is None else a.value, b.value)
             for a, tos in ITEM_TRANSPORT_TRANSITIONS.items() for b in tos}
    assert seen - table == set()
    final = {r[0] for r in wire.sql(h.alpha.engine).execute("SELECT transport FROM items")}
    assert final == {"delivered"}


def test_the_table_refuses_what_it_does_not_name() -> None:
    check_items(frozenset({ItemTransport.QUEUED, ItemTransport.SENT}), ItemTransport.DELIVERED)
    with pytest.raises(TransitionRefused, match="delivered may not change to queued"):
        check_items(frozenset({ItemTransport.DELIVERED}), ItemTransport.QUEUED)
    with pytest.raises(TransitionRefused):
        check_items(frozenset({ItemTransport.UNACKNOWLEDGED}), ItemTransport.SENT)


def test_the_stores_and_the_apis_transport_states_are_the_tables() -> None:
    assert TRANSPORT_STATES == tuple(t.value for t in ItemTransport)
    assert ITEM_STATES[-len(ItemTransport):] == TRANSPORT_STATES
