"""The audit log against the store, tallied a record and a row at a time
(``bridge/core/audit_tally.py``): it says "holds" exactly where the whole-log check finds
nothing, for every tampering the whole-log tests try, its store tally is the store's facts,
and a sound check holds one record at a time, not the log. Each test named after what it
tries."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import open_pair, person, wire
from test_audit import facts_of, make_log, rechain, renumber

from bridge.cli.audit import _check_home_store
from bridge.core import audit, audit_tally
from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.store_check import audit_faults
from bridge.store.sqlite.check import CheckRows

Log = list[audit.AuditRecord]
Damage = Callable[[Log, audit.StoreFacts], tuple[Log, audit.StoreFacts]]


def tally_of(facts: audit.StoreFacts, key: bytes) -> audit_tally.Tally:
    """The tally of a store holding ``facts`` (what ``CheckRows.store_tally`` reads)."""
    t = audit_tally.Tally(key)
    for digest in facts.documents:
        t.add(audit_tally.DOCUMENTS, digest)
    for peer, seq, digest in facts.outbox:
        t.add(audit_tally.OUTBOX, peer, seq, digest)
    for peer, seq in facts.receipts:
        t.add(audit_tally.RECEIPTS, peer, seq)
    for peer, seq, digest in facts.inbox:
        t.add(audit_tally.INBOX, peer, seq, digest)
    for (peer, seq), receipt_hash in facts.issued.items():
        t.add(audit_tally.ISSUED, peer, seq, receipt_hash)
    t.add_copies(facts.refusals, audit_tally.REFUSALS)
    return t


def holds(log: Log, facts: audit.StoreFacts) -> bool:
    return audit_tally.log_holds(iter(log), lambda key: tally_of(facts, key), os.urandom(32),
                                 leaves=facts.leaves, checkpoint=facts.checkpoint) is not None


def whole_check_finds_nothing(log: Log, facts: audit.StoreFacts) -> bool:
    return audit.check_chain(log).ok and audit.check_store(log, facts) is None


def _replace(i: int, **changes: object) -> Damage:
    def damage(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
        log = list(log)
        log[i] = dataclasses.replace(log[i], **changes)  # type: ignore[arg-type]
        return log, facts
    return damage


def _facts(**changes: object) -> Damage:
    return lambda log, facts: (log, dataclasses.replace(facts, **changes))  # type: ignore[arg-type]


def _row_added(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
    return log, dataclasses.replace(facts, outbox=facts.outbox | {("beta", 99, bytes(32))})


def _row_swapped(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
    """One outbox row removed and another put in its place: as many rows as before."""
    gone = sorted(facts.outbox)[0]
    return log, dataclasses.replace(facts, outbox=facts.outbox - {gone} | {
        (gone[0], gone[1], hashlib.sha256(b"forged").digest())})


def _receipt_rewritten(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
    return log, dataclasses.replace(facts, issued={**facts.issued, ("beta", 5): bytes(32)})


def _tail_and_tree_cut(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
    return log[:-1], dataclasses.replace(facts, leaves=len(log) - 1)


def _body_without_its_fields(log: Log, facts: audit.StoreFacts) -> tuple[Log, audit.StoreFacts]:
    log = list(log)
    r = dataclasses.replace(log[2], body=b"\x80")  # an empty map: no digest, no seq
    log[2] = dataclasses.replace(r, hash=r.computed_hash())
    return rechain(log, 3), facts


DAMAGE: dict[str, Damage] = {
    "nothing": lambda log, facts: (log, facts),
    "body_changed": _replace(3, body=b"\x81\xa1x\x01"),
    "time_changed": _replace(4, at=1),
    "record_removed": lambda log, facts: (log[:5] + log[6:], facts),
    "records_renumbered": lambda log, facts: (renumber(log[:5] + log[6:]), facts),
    "records_swapped": lambda log, facts: ([*log[:3], log[4], log[3], *log[5:]], facts),
    "record_rewritten_and_rechained": lambda log, facts: (
        rechain([*log[:6], dataclasses.replace(log[6], at=log[6].at + 1), *log[7:]], 6), facts),
    "tail_cut": lambda log, facts: (log[:-3], facts),
    "tail_and_tree_cut": _tail_and_tree_cut,
    "checkpoint_past_the_log": _facts(checkpoint=99),
    "appended_without_a_leaf": _facts(leaves=15),
    "row_added": _row_added,
    "row_swapped_for_a_forged_one": _row_swapped,
    "document_row_removed": lambda log, facts: (log, dataclasses.replace(
        facts, documents=set(sorted(facts.documents)[1:]))),
    "receipt_rewritten": _receipt_rewritten,
    "refusal_removed": _facts(refusals=1),
    "body_without_the_fields_of_its_kind": _body_without_its_fields,
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_the_tally_holds_exactly_where_the_whole_check_finds_nothing(name: str) -> None:
    log = make_log(16)
    damaged, facts = DAMAGE[name](log, facts_of(log))
    assert holds(damaged, facts) == whole_check_finds_nothing(damaged, facts)
    # A log rewritten from a record on, every hash recomputed, holds as a chain for both:
    # its head changed, which the checkpoints the witness cosigned tell (PROTOCOL.md §13).
    assert holds(damaged, facts) == (name in ("nothing", "record_rewritten_and_rechained"))


@pytest.mark.parametrize("n", [0, 1, 16])
def test_a_sound_log_walked_a_record_at_a_time_sums_up_as_the_whole_walk(n: int) -> None:
    log = make_log(n)
    assert audit_tally.walk_chain(iter(log)) == audit.check_chain(log)
    assert audit_tally.log_holds(iter(log), lambda key: tally_of(facts_of(log), key),
                                 os.urandom(32), leaves=n, checkpoint=0) == audit.check_chain(log)


def test_tallies_are_of_multisets_whatever_the_order() -> None:
    key = os.urandom(32)
    a, b = audit_tally.Tally(key), audit_tally.Tally(key)
    for n in range(5):
        a.add(audit_tally.INBOX, "beta", n, bytes([n]) * 32)
    for n in reversed(range(5)):
        b.add(audit_tally.INBOX, "beta", n, bytes([n]) * 32)
    assert a.same(b)
    b.add(audit_tally.INBOX, "beta", 0, bytes(32))  # a row twice is not the row once
    assert not a.same(b)


def test_refusals_counted_as_copies_are_the_same_as_one_by_one() -> None:
    key = os.urandom(32)
    a, b = audit_tally.Tally(key), audit_tally.Tally(key)
    a.add_copies(3, audit_tally.REFUSALS)
    for _ in range(3):
        b.add(audit_tally.REFUSALS)
    assert a.same(b)


def test_tallies_under_two_keys_differ() -> None:
    """The key is drawn for each check: whoever wrote the file cannot have chosen for it."""
    a, b = audit_tally.Tally(os.urandom(32)), audit_tally.Tally(os.urandom(32))
    a.add(audit_tally.DOCUMENTS, bytes(32))
    b.add(audit_tally.DOCUMENTS, bytes(32))
    assert not a.same(b)


# ---------------------------------------------------------------- a real store


@pytest.fixture
def store_path(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Path:
    """Beta's store after 60 round trips (a manifest of one person each, acknowledged)."""
    with open_pair(tmp_path, alpha, beta) as h:
        for n in range(60):
            wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
            h.courier.settle()
            wire.acknowledge(h.beta.engine, f"M-{n}", all="RECEIVED")
            h.courier.settle()
        return h.beta.home.db_path


def test_the_store_tally_is_the_tally_of_the_store_facts(store_path: Path) -> None:
    rows, key = CheckRows(sqlite3.connect(store_path)), os.urandom(32)
    assert rows.store_tally(key).same(tally_of(rows.store_facts(), key))
    leaves, checkpoint = rows.log_size()
    assert audit_tally.log_holds(rows.iter_audit_records(), rows.store_tally, key,
                                 leaves=leaves, checkpoint=checkpoint) is not None


def test_a_sound_log_is_checked_in_memory_of_a_record_at_a_time(store_path: Path) -> None:
    """The whole log read at once, as before, against the tally: a fraction of its memory."""
    rows = CheckRows(sqlite3.connect(store_path))
    tracemalloc.start()
    try:
        assert audit_faults(rows) == []
        _, tallied = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        records = rows.audit_records()
        assert audit.check_chain(records).ok
        assert audit.check_store(records, rows.store_facts()) is None
        _, whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(records) > 300
    assert tallied * 4 < whole, (tallied, whole)


def test_an_outbox_row_forged_in_place_of_another_is_named(store_path: Path) -> None:
    """As many rows as the log accounts for, one of them not the one it names: the tally
    differs, and the log read whole names the row."""
    with sqlite3.connect(store_path) as con:
        con.execute("UPDATE outbox SET digest = zeroblob(32) WHERE seq = 7")
    faults = audit_faults(CheckRows(sqlite3.connect(store_path)))
    assert [f.where for f in faults] == ["the audit log"]
    assert "outbound envelope 7" in faults[0].what, faults


def test_audit_verify_of_a_sound_store_never_holds_the_log_whole(
        store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bridge audit verify`` and a transcript's export check the log a record at a time;
    only a log that does not hold is read whole, to say what is wrong."""
    def whole(self: CheckRows, since: int = 1) -> Log:
        raise AssertionError("the log was read whole")

    monkeypatch.setattr(CheckRows, "audit_records", whole)
    result, mismatch, faults = _check_home_store(store_path)
    assert result.ok and result.records > 300 and mismatch is None and faults == []
