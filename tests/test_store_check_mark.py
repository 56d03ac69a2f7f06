"""The store check at start reads only what changed since the last complete check's signed
mark, and the whole check runs beside the work in slices (``bridge/engine/check_pass.py``):
tampering after the mark is still caught, at start when it touches what changed, by the pass
beside the work when it touches what the mark vouched for; a mark that is deleted, forged,
signed by another key or put back on another store buys nothing (the whole check runs at
start). Real engines on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_identity
from harness import Harness, open_pair, person, wire

from bridge.core import audit, audit_tally
from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.check_mark import CheckMark, sign_mark, verified_mark
from bridge.engine.check_pass import CheckPass
from bridge.engine.store_check import check_store
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.check import CheckRows, StoredDocument


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    """M-1 (ten persons) sent alpha → beta and acknowledged, then a complete check on beta
    that leaves its mark."""
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                    doc_id="M-1")
        harness.courier.settle()
        wire.acknowledge(harness.beta.engine, "M-1", all="RECEIVED")
        harness.courier.settle()
        _restart_without_mark(harness)
        yield harness


def _restart_without_mark(h: Harness) -> None:
    """Beta restarted with no mark: the whole check runs at start and leaves one."""
    wire.sql(h.beta.engine).execute("DELETE FROM store_check_mark")
    _restart(h)
    assert not h.beta.engine.check_pass_due()
    assert _mark(h) is not None


def _restart(h: Harness) -> list[str]:
    h.beta.restart()
    return [str(f) for f in h.beta.engine.check_store()]


def _mark(h: Harness) -> CheckMark | None:
    rows = h.beta.engine.store.check_rows()
    return verified_mark(rows.check_mark(), h.beta.engine.engine.trust.own)


def _sql(h: Harness, statement: str, *args: object) -> None:
    """An edit behind the daemon's back, through a connection of its own."""
    con = sqlite3.connect(h.beta.home.db_path)
    try:
        with con:
            con.execute(statement, args)
    finally:
        con.close()


def _run_pass(h: Harness, pages: int = 1) -> list[str]:
    """The whole check beside the work, as the daemon drives it (a read-only connection of
    its own, ``pages`` pages a slice)."""
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        work = CheckPass(CheckRows(conn))
        h.beta.engine.check_pass_begun()
        while True:
            found, done = work.step(pages)
            h.beta.engine.found_store_faults(found)
            if done:
                break
        h.beta.engine.check_pass_done(work)
        return [str(f) for f in work.faults]
    finally:
        conn.close()


def test_a_sound_restart_reads_only_what_came_after_the_mark_then_checks_all_beside(
        h: Harness) -> None:
    assert _restart(h) == []
    assert h.beta.engine.check_pass_due()  # the start read what changed; the rest is due
    assert wire.health(h.beta.engine)["store"]["check"] == "running"
    before = _mark(h)
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(20, 23)],
                doc_id="M-2")
    h.courier.settle()
    assert _run_pass(h) == []
    after = _mark(h)
    assert before is not None and after is not None and after.documents > before.documents
    assert wire.health(h.beta.engine)["status"] == "ok"
    assert wire.health(h.beta.engine)["store"]["check"] == "complete"


def test_entry_changed_in_a_document_stored_after_the_mark_is_caught_at_start(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(20, 23)],
                doc_id="M-2")
    h.courier.settle()
    _sql(h, "UPDATE item_leaves SET leaf = CAST(leaf || x'00' AS BLOB) WHERE (doc, idx) IN "
             "(SELECT doc, idx FROM items WHERE item_id = 'P-00021')")
    faults = _restart(h)
    assert any("M-2" in f and "leaf hash" in f for f in faults), faults


def test_status_changed_after_a_later_acknowledgement_is_caught_at_start(h: Harness) -> None:
    """An acknowledgement stored after the mark changes P-00003's status: the items table
    then says WITHHELD where the signed history says DISPUTED. The document is older than
    the mark, so only the items the later acknowledgement names are read at start."""
    wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00003", "status": "DISPUTED", "reason": "not this person"}])
    _sql(h, "UPDATE items SET status = 'WITHHELD' WHERE item_id = 'P-00003'")
    faults = _restart(h)
    assert any("P-00003" in f and "DISPUTED" in f for f in faults), faults


def test_entry_changed_in_a_document_the_mark_vouched_for_is_caught_beside_the_work(
        h: Harness) -> None:
    """What the mark vouched for is not read at start, but the pass beside the work reads
    it: the alarm, and the store read-only, the moment it is found; no new mark."""
    mark = _mark(h)
    _sql(h, "UPDATE item_leaves SET leaf = CAST(leaf || x'00' AS BLOB) WHERE (doc, idx) IN "
             "(SELECT doc, idx FROM items WHERE item_id = 'P-00005')")
    assert _restart(h) == []
    faults = _run_pass(h)
    assert any("M-1" in f and "leaf hash" in f for f in faults), faults
    health = wire.health(h.beta.engine)
    assert health["status"] == "store_corrupt", health
    assert _mark(h) == mark
    # Restarted again, the mark older than that alarm is void: the start checks all.
    again = _restart(h)
    assert any("M-1" in f and "leaf hash" in f for f in again), again
    assert not h.beta.engine.check_pass_due()


@pytest.mark.parametrize("forge", ["deleted", "resigned_by_another_key", "bit_flipped",
                                   "moved_past_the_damage"])
def test_a_mark_that_is_not_the_party_s_own_buys_nothing(
        h: Harness, forge: str) -> None:
    """An attacker with write access to the file edits an entry, then deletes the mark, signs
    one of their own, flips a bit of it, or (with the party's real signature, copied from a
    mark of another store) names a later document: the whole check runs at start."""
    stored = h.beta.engine.store.check_rows().check_mark()
    assert stored is not None
    _sql(h, "UPDATE item_leaves SET leaf = CAST(leaf || x'00' AS BLOB) WHERE (doc, idx) IN "
             "(SELECT doc, idx FROM items WHERE item_id = 'P-00005')")
    body, sig = stored
    mark = CheckMark.from_body(body)
    if forge == "deleted":
        _sql(h, "DELETE FROM store_check_mark")
    else:
        if forge == "resigned_by_another_key":
            body, sig = sign_mark(make_identity("beta", seed="another key"), mark)
        elif forge == "bit_flipped":
            body = body[:-1] + bytes([body[-1] ^ 1])
        else:
            body, sig = sign_mark(h.beta.identity, CheckMark(
                documents=mark.documents + 50, digest=b"\x00" * 32, open=(),
                audit_seq=mark.audit_seq, audit_head=mark.audit_head, at=mark.at))
        _sql(h, "UPDATE store_check_mark SET body = ?, sig = ?", body, sig)
    faults = _restart(h)
    assert any("M-1" in f and "leaf hash" in f for f in faults), faults
    assert not h.beta.engine.check_pass_due()


def test_audit_log_cut_below_the_mark_makes_it_no_mark(h: Harness) -> None:
    """The mark names the audit record it saw last: a log rewritten below it (here: that
    record's hash changed) is not the one it saw, so the whole check runs at start."""
    mark = _mark(h)
    assert mark is not None and mark.audit_seq > 0
    _sql(h, "UPDATE audit SET hash = zeroblob(32) WHERE seq = ?", mark.audit_seq)
    faults = _restart(h)
    assert faults and not h.beta.engine.check_pass_due()


def test_the_pass_in_slices_finds_what_the_whole_check_finds(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of two entries: the sliced pass pauses inside documents, and finds the same."""
    monkeypatch.setattr("bridge.engine.store_check.PAGE", 2)
    monkeypatch.setattr("bridge.store.sqlite.check.PAGE", 2)
    _sql(h, "UPDATE items SET status = 'WITHHELD' WHERE item_id = 'P-00007'")
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        whole = check_store(CheckRows(conn))
        work = CheckPass(CheckRows(conn))
        steps, found, done = 0, [], False
        while not done:
            got, done = work.step(1)
            found += got
            steps += 1
    finally:
        conn.close()
    assert whole and [str(f) for f in found] == [str(f) for f in whole]
    assert steps > 10  # it did pause, many times


def test_a_document_still_arriving_while_the_pass_reads_it_is_no_fault(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass read a document's row, then more of its entries were stored: its count no
    longer matches the row the pass holds, which is no damage (the next check reads it)."""
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        rows = CheckRows(conn)
        read = rows.documents

        def read_before_the_last_chunk(after: int = 0, limit: int = -1) -> list[StoredDocument]:
            return [d._replace(stored=d.stored - 1) if d.id == "M-1" else d
                    for d in read(after, limit)]

        monkeypatch.setattr(rows, "documents", read_before_the_last_chunk)
        work = CheckPass(rows)
        found, done = work.step(1000)
        assert work.documents == len(read())
    finally:
        conn.close()
    assert (found, done) == ([], True)


def test_status_changed_by_an_acknowledgement_still_arriving_at_the_mark_is_caught_at_start(
        h: Harness) -> None:
    """A mark made while an acknowledgement was still arriving names it among the open
    documents: the statuses it changed, on a document the mark vouched for, are read at start
    like those of one stored after the mark."""
    wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00003", "status": "DISPUTED", "reason": "not this person"}])
    rows = h.beta.engine.store.check_rows()
    ack = rows.documents()[-1]
    assert ack.type == "ack"
    seq, head = rows.audit_head()
    body, sig = sign_mark(h.beta.identity, CheckMark(
        documents=ack.rowid, digest=ack.digest, open=(ack.rowid,), audit_seq=seq,
        audit_head=head, at=0))
    _sql(h, "UPDATE store_check_mark SET body = ?, sig = ?", body, sig)
    _sql(h, "UPDATE items SET status = 'WITHHELD' WHERE item_id = 'P-00003'")
    faults = _restart(h)
    assert h.beta.engine.check_pass_due()  # the mark was taken: only what changed was read
    assert any("P-00003" in f and "DISPUTED" in f for f in faults), faults


def test_damage_found_after_the_mark_voids_it_the_next_start_checks_all(h: Harness) -> None:
    """A read found a status the signed history does not say (the alarm is in the event log),
    the daemon stopped: the next start does not trust the mark older than that alarm, it
    checks the whole store before serving and finds it again."""
    assert _restart(h) == []
    _sql(h, "UPDATE items SET status = 'WITHHELD' WHERE item_id = 'P-00006'")
    with pytest.raises(Exception, match="P-00006"):
        wire.item(h.beta.engine, "M-1", "P-00006")
    faults = _restart(h)
    assert any("P-00006" in f for f in faults), faults
    assert not h.beta.engine.check_pass_due()


# ------------------------------------------------------------ the audit log since the mark


def _records_read_at_start(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Restart beta, counting the audit records the check at start reads."""
    read: list[int] = []
    whole = CheckRows.audit_records

    def counted(self: CheckRows, since: int = 1) -> list[audit.AuditRecord]:
        records = whole(self, since)
        read.extend(r.seq for r in records)
        return records

    monkeypatch.setattr(CheckRows, "audit_records", counted)
    assert _restart(h) == []
    return read


def test_a_start_reads_the_audit_records_after_the_mark_not_the_whole_log(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost of a start follows what was written since the last complete check, not
    the daemon's whole history: the records before the mark's are left to the pass."""
    mark = _mark(h)
    assert mark is not None and mark.audit_seq > 5
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(20, 23)],
                doc_id="M-2")
    h.courier.settle()
    head, _ = h.beta.engine.store.check_rows().audit_head()
    assert head > mark.audit_seq
    assert _records_read_at_start(h, monkeypatch) == list(range(mark.audit_seq, head + 1))
    assert h.beta.engine.check_pass_due()
    assert _run_pass(h) == []  # the pass reads the log whole, and finds it sound


def _after_the_mark(h: Harness) -> int:
    """M-2 delivered to beta after the mark: the mark's audit record."""
    mark = _mark(h)
    assert mark is not None
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(20, 23)],
                doc_id="M-2")
    h.courier.settle()
    assert h.beta.engine.store.check_rows().audit_head()[0] > mark.audit_seq + 1
    return mark.audit_seq


def test_a_record_changed_after_the_mark_is_caught_at_start(h: Harness) -> None:
    at_mark = _after_the_mark(h)
    _sql(h, "UPDATE audit SET at = at + 1 WHERE seq = ?", at_mark + 1)
    faults = _restart(h)
    assert any(f"record {at_mark + 1}" in f and "changed" in f for f in faults), faults
    assert h.beta.engine.check_pass_due()  # the mark held: only what followed it was read


def test_the_log_tail_written_after_the_mark_cut_off_is_caught_at_start(h: Harness) -> None:
    """The last records removed with nothing else: the log's tree still has their leaves."""
    at_mark = _after_the_mark(h)
    _sql(h, "DELETE FROM audit WHERE seq > ?", at_mark + 1)
    faults = _restart(h)
    assert any("its tail cut off" in f for f in faults), faults


def test_a_record_the_mark_vouched_for_changed_is_caught_beside_the_work(h: Harness) -> None:
    """A record before the mark's is not read at start; the pass beside the work reads the
    log whole and raises the alarm."""
    mark = _mark(h)
    assert mark is not None and mark.audit_seq > 2
    _sql(h, "UPDATE audit SET at = at + 1 WHERE seq = 2")
    assert _restart(h) == []
    faults = _run_pass(h)
    assert any("record 2" in f and "changed" in f for f in faults), faults
    assert wire.health(h.beta.engine)["status"] == "store_corrupt"
    assert _mark(h) == mark  # no new mark over a damaged log


def test_a_row_removed_behind_the_log_is_caught_beside_the_work(h: Harness) -> None:
    """The daemon writes a row and its record in one transaction, so only a hand parts them:
    what the log says the store holds is compared by the pass, against the whole log."""
    _sql(h, "DELETE FROM refusals")  # none: the statement below needs a row to remove
    _sql(h, "DELETE FROM inbox WHERE seq = (SELECT MAX(seq) FROM inbox)")
    assert _restart(h) == []
    faults = _run_pass(h)
    assert any("inbound envelope" in f and "not in the store" in f for f in faults), faults


def test_the_pass_reads_the_log_and_the_rows_at_one_instant(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon goes on writing while the pass reads: a document submitted between the
    pass reading the log and reading the rows is in neither, so it is no fault."""
    assert _restart(h) == []
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        rows = CheckRows(conn)
        tally = rows.store_tally

        def written_meanwhile(key: bytes) -> audit_tally.Tally:
            wire.submit(h.beta.engine, "manifest", "alpha", [person(40)], doc_id="M-BETA")
            return tally(key)

        monkeypatch.setattr(rows, "store_tally", written_meanwhile)
        work = CheckPass(rows)
        done = False
        while not done:
            found, done = work.step(100)
            assert found == [], found
    finally:
        conn.close()
    assert [d.id for d in h.beta.engine.store.check_rows().documents()][-1] == "M-BETA"


def test_the_pass_reads_the_document_rows_a_page_at_a_time(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub's store may hold a million documents: the pass never holds all their rows, and
    leaves the mark a whole check leaves."""
    monkeypatch.setattr("bridge.engine.store_check.DOCUMENTS_PAGE", 2)
    for n in range(3):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(50 + n)], doc_id=f"M-P{n}")
    h.courier.settle()
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        rows = CheckRows(conn)
        every = rows.documents()
        read = rows.documents
        pages: list[tuple[int, int]] = []

        def paged(after: int = 0, limit: int = -1) -> list[StoredDocument]:
            page = read(after, limit)
            pages.append((limit, len(page)))
            return page

        monkeypatch.setattr(rows, "documents", paged)
        work, done = CheckPass(rows), False
        while not done:
            _, done = work.step(1)
    finally:
        conn.close()
    assert len(every) > 2 and work.documents == len(every)
    assert all(limit == 2 and n <= 2 for limit, n in pages), pages
    assert work.mark(0) == CheckMark(
        documents=every[-1].rowid, digest=every[-1].digest,
        open=tuple(d.rowid for d in every if d.direction == "in" and d.stored < d.entry_count),
        audit_seq=work.audit[0], audit_head=work.audit[1], at=0, events=work.events)


def test_a_document_stored_after_the_pass_began_is_the_next_check_s(h: Harness) -> None:
    conn = audit_db.connect(h.beta.home.db_path)
    try:
        work = CheckPass(CheckRows(conn))
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(30, 32)],
                    doc_id="M-LATER")
        h.courier.settle()
        done = False
        while not done:
            found, done = work.step(1)
            assert found == []
    finally:
        conn.close()
    mark = work.mark(0)
    assert mark is not None and mark.documents == work.upto
    later = h.beta.engine.store.check_rows().documents(after=work.upto)
    assert [d.id for d in later] == ["M-LATER"]
