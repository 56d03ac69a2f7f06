"""The store's grouped reconciliation queries on a real SQLite file
(bridge/store/sqlite/reconcile.py): which
entry's status counts, how items are merged across documents, where a category comes from,
undeclared items and the peer filter. Synthetic records, no daemon, no timings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from bridge.core.documents import Item, encode_declared_entry
from bridge.reports.build import build_reconciliation
from bridge.reports.model import ItemCount
from bridge.reports.rules import REASON_STATUSES
from bridge.store.sqlite.store import Store


class Builder:
    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.n = 0

    def doc(self, doc_id: str, records: list[dict[str, Any]], *, type: str = "manifest",
            direction: str = "out", peer: str = "beta", meta: dict[str, Any] | None = None,
            statuses: list[str | None] | None = None, transport: str = "delivered",
            undeclared: dict[str, str] | None = None) -> int:
        self.n += 1
        st = self.store
        with st.transaction():
            row = st.insert_document(
                id=doc_id, direction=direction, peer=peer, type=type,
                digest=hashlib.sha256(f"{self.n}".encode()).digest(), header=b"h", sig=b"s",
                count=len(records), answers=None, meta=meta or {}, created=1000 + self.n,
                state="delivered", now=1000)
            st.insert_items(
                (row, k, r["id"], encode_declared_entry(
                    k, bytes(16), Item(id=r["id"], data={a: b for a, b in r.items() if a != "id"})),
                 bytes(32), transport) for k, r in enumerate(records))
            st.update_statuses((s, "why" if s == "DISPUTED" else None, None, 5, row, k)
                               for k, s in enumerate(statuses or []) if s)
            if undeclared:
                ack = st.insert_document(
                    id=f"ACK-{self.n}", direction="in" if direction == "out" else "out",
                    peer=peer, type="ack", digest=hashlib.sha256(f"a{self.n}".encode()).digest(),
                    header=b"h", sig=b"s", count=len(undeclared), answers=row, meta={},
                    created=2000 + self.n, state="received", now=1000)
                st.insert_ack_entries((ack, k, row, None, item_id, status, None, None, b"l",
                                       2000 + k) for k, (item_id, status)
                                      in enumerate(undeclared.items()))
        return row

    def items(self, peer: str | None = None) -> list[ItemCount]:
        return sorted(self.store.reconcile_items(peer),
                      key=lambda i: (i.direction, i.peer, str(i.category), i.status or ""))


@pytest.fixture
def b(tmp_path: Path) -> Builder:
    return Builder(tmp_path / "bridge.db")


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"P-{n}", "category": "pow", "surname": f"Testname{n}", **extra}


def test_a_manifest_entry_supersedes_the_roster_entry_of_the_same_person(b: Builder) -> None:
    b.doc("R", [person(1), person(2), person(3)], type="roster", meta={"category": "pow"},
          statuses=["RECEIVED", "RECEIVED", "ALREADY_EXCHANGED"])
    b.doc("M", [{"id": "P-1", "kind": "person"}, {"id": "P-2", "kind": "person"}],
          meta={"category": "pow"}, statuses=["NOT_RECEIVED", None])
    got = {(i.listed, i.manifested, i.status): i.count for i in b.items()}
    assert got == {(True, True, "NOT_RECEIVED"): 1, (True, True, None): 1,
                   (True, False, "ALREADY_EXCHANGED"): 1}


def test_a_later_manifest_supersedes_an_earlier_one(b: Builder) -> None:
    b.doc("M1", [{"id": "BAG-1", "kind": "remains_package"}, {"id": "BAG-2",
                                                             "kind": "remains_package"}],
          meta={"category": "remains"}, statuses=["NOT_RECEIVED", "RECEIVED"])
    b.doc("M2", [{"id": "BAG-1", "kind": "remains_package"}], meta={"category": "remains"},
          statuses=["RECEIVED"])
    (line,) = b.items()
    assert (line.category, line.status, line.count) == ("remains", "RECEIVED", 2)


def test_roster_record_names_the_person(b: Builder) -> None:
    b.doc("R", [person(1), person(2)], type="roster", meta={"category": "pow"})
    # new item ids, each naming its roster record; the second handover repeats P-2
    b.doc("M1", [{"id": "H1-1", "kind": "person", "roster_record": "P-1"},
                 {"id": "H1-2", "kind": "person", "roster_record": "P-2"}],
          meta={"category": "pow"}, statuses=["RECEIVED", "NOT_RECEIVED"])
    b.doc("M2", [{"id": "H2-1", "kind": "person", "roster_record": "P-2"}],
          meta={"category": "pow"}, statuses=["RECEIVED"])
    got = [(i.listed, i.manifested, i.status, i.count) for i in b.items()]
    assert got == [(True, True, "RECEIVED", 2)]


def test_where_the_category_comes_from(b: Builder) -> None:
    # a roster's entries: its meta.category; a manifest's: the item's field, else the meta
    b.doc("R", [person(1)], type="roster", meta={"category": "pow"})
    b.doc("M", [{"id": "X-1", "kind": "person", "category": "civilian_detainee"},
                {"id": "X-2", "kind": "remains_package"},
                {"id": "X-3", "kind": "document", "category": 7},
                {"id": "X-4", "kind": "document", "note": {"category": "nested, ignored"}}],
          meta={"category": "remains"})
    b.doc("M0", [{"id": "Y-1", "kind": "document"}])  # no category anywhere
    got = {i.category: i.count for i in b.items()}
    assert got == {"pow": 1, "civilian_detainee": 1, "remains": 3, None: 1}


def test_reached_is_delivery_or_an_acknowledgement(b: Builder) -> None:
    b.doc("M", [{"id": f"Q-{n}", "kind": "person"} for n in range(3)],
          meta={"category": "pow"}, transport="queued", statuses=[None, "RECEIVED", None])
    b.doc("MI", [{"id": "I-1", "kind": "person"}], direction="in", transport="received",
          meta={"category": "pow"})
    got = {(i.direction, i.reached, i.status): i.count for i in b.items()}
    assert got == {("out", False, None): 2, ("out", True, "RECEIVED"): 1,
                   ("in", True, None): 1}


def test_directions_and_peers_are_kept_apart(b: Builder) -> None:
    b.doc("M-B", [{"id": "P-1", "kind": "person"}], meta={"category": "pow"}, peer="beta")
    b.doc("M-G", [{"id": "P-1", "kind": "person"}], meta={"category": "pow"}, peer="gamma")
    b.doc("M-IN", [{"id": "P-1", "kind": "person"}], meta={"category": "pow"}, peer="beta",
          direction="in", transport="received")
    assert sorted((i.direction, i.peer, i.count) for i in b.items()) == [
        ("in", "beta", 1), ("out", "beta", 1), ("out", "gamma", 1)]
    assert sorted((i.direction, i.peer) for i in b.items("gamma")) == [("out", "gamma")]


def test_documents_undeclared_and_reasons(b: Builder) -> None:
    b.doc("M", [{"id": f"B-{n}", "kind": "remains_package"} for n in range(4)],
          meta={"category": "remains", "declared": 5}, statuses=["RECEIVED", "DISPUTED", None,
                                                                 "DISPUTED"],
          undeclared={"U-1": "RECEIVED_UNDECLARED", "U-2": "RECEIVED_UNDECLARED"})
    b.doc("EMPTY", [], type="roster", meta={"category": "pow"})
    docs = {d.id: d for d in b.store.reconcile_documents(None)}
    assert docs["M"].by_status == {None: 1, "RECEIVED": 1, "DISPUTED": 2}
    assert docs["M"].undeclared == {"RECEIVED_UNDECLARED": 2}
    assert docs["EMPTY"].by_status == {} and docs["EMPTY"].type == "roster"
    reasons = b.store.reason_counts(None, REASON_STATUSES)
    assert [(r.status, r.reason, r.count) for r in reasons] == [("DISPUTED", "why", 2)]
    report = build_reconciliation(
        party="alpha", peer=None, generated="2026-01-01T00:00:00.000Z",
        items=b.store.reconcile_items(None), documents=docs.values(), reasons=reasons)
    (m,) = report.manifests
    assert (m.declared, m.counted, m.difference, m.complete) == (5, 5, 0, False)


@pytest.mark.parametrize("order", [("RECEIVED", "NOT_RECEIVED"), ("NOT_RECEIVED", "RECEIVED")])
def test_a_bag_received_with_its_papers_not_received_counts_as_arrived_whatever_the_order(
        b: Builder, order: tuple[str, str]) -> None:
    # One person, two entries of one manifest (the bag, its papers): a stated rule decides
    # (rules.TIE_PRECEDENCE: an arrival beats "not received"), not the order of status codes.
    b.doc("M", [{"id": "BAG-1", "kind": "remains_package", "roster_record": "R-1"},
                {"id": "DOC-1", "kind": "document", "roster_record": "R-1"}],
          meta={"category": "remains"}, statuses=list(order))
    assert [(i.status, i.count) for i in b.items()] == [("RECEIVED", 1)]


def test_a_dispute_beats_an_arrival_within_one_document(b: Builder) -> None:
    b.doc("M", [{"id": "BAG-1", "kind": "remains_package", "roster_record": "R-1"},
                {"id": "DOC-1", "kind": "document", "roster_record": "R-1"}],
          meta={"category": "remains"}, statuses=["IDENTITY_CONFIRMED", "DISPUTED"])
    assert [(i.status, i.count) for i in b.items()] == [("DISPUTED", 1)]
