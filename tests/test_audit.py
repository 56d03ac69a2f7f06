"""The audit log's chain (bridge/core/audit.py, PROTOCOL.md §11): the exact hashing, an intact log,
and every kind of tampering, each test named after what it tries. Plus the store against the
log, and appending only inside the transaction of the change recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from conftest import make_identity

from bridge.core import audit
from bridge.core.errors import StoreError, VerificationError
from bridge.engine.exchange import Exchange
from bridge.home.config import Config
from bridge.store.sqlite.store import Store

T0 = 1_772_463_600_000  # 2026-03-02T15:00:00.000Z


def make_log(n: int = 8) -> list[audit.AuditRecord]:
    """A synthetic log: a key event, then documents, envelopes and receipts for peer beta."""
    kinds = [audit.KEY, audit.DOCUMENT, audit.ENVELOPE_QUEUED, audit.RECEIPT_RECEIVED,
             audit.ENVELOPE_RECEIVED, audit.RECEIPT_ISSUED, audit.ACK, audit.REFUSAL]
    out: list[audit.AuditRecord] = []
    for k in range(n):
        last = out[-1] if out else None
        out.append(audit.next_record(
            last_seq=last.seq if last else 0, last_hash=last.hash if last else audit.ZERO_HASH,
            last_at=last.at if last else 0, now=T0 + 1000 * k, kind=kinds[k % len(kinds)],
            peer=None if k == 0 else "beta",
            body=_body(kinds[k % len(kinds)], k)))
    return out


def _body(kind: str, k: int) -> dict[str, Any]:
    body: dict[str, Any] = {"digest": hashlib.sha256(b"synthetic %d" % k).digest(), "seq": k}
    if kind in (audit.RECEIPT_RECEIVED, audit.RECEIPT_ISSUED):
        body["receipt"] = b"signed receipt %d" % k
    return body


def renumber(records: list[audit.AuditRecord]) -> list[audit.AuditRecord]:
    """Give records the sequence numbers 1, 2, … again (hashes left as they are)."""
    return [dataclasses.replace(r, seq=n) for n, r in enumerate(records, start=1)]


def rechain(records: list[audit.AuditRecord], start: int = 0) -> list[audit.AuditRecord]:
    """Recompute every hash from ``start`` on, as someone rewriting the log would."""
    out = list(records[:start])
    for r in records[start:]:
        prev = out[-1].hash if out else audit.ZERO_HASH
        r = dataclasses.replace(r, prev_hash=prev)
        out.append(dataclasses.replace(r, hash=r.computed_hash()))
    return out


def problem(records: list[audit.AuditRecord]) -> audit.AuditProblem:
    result = audit.check_chain(records)
    assert not result.ok and result.problem is not None
    return result.problem


# ---------------------------------------------------------------- the exact hashing


def test_record_hash_is_sha256_of_tag_prev_and_canonical_record() -> None:
    """Written from PROTOCOL.md §11.1 with msgpack and hashlib alone."""
    body = msgpack.packb({"digest": bytes(32), "seq": 1}, use_bin_type=True)
    rec = audit.next_record(last_seq=0, last_hash=audit.ZERO_HASH, last_at=0, now=T0,
                            kind="document", peer="beta", body={"seq": 1, "digest": bytes(32)})
    assert rec.body == body
    record = msgpack.packb({"at": T0, "body": body, "kind": "document", "peer": "beta",
                            "seq": 1, "v": 1}, use_bin_type=True)
    assert rec.record_bytes() == record
    assert rec.hash == hashlib.sha256(b"bridge/v1/audit\x00" + bytes(32) + record).digest()
    assert rec.prev_hash == bytes(32) and rec.seq == 1 and rec.at == T0
    # Frozen: the example of PROTOCOL.md §11.1.
    assert record.hex() == (
        "86a26174cf0000019caf103180a4626f6479c42f82a6646967657374c420" + "00" * 32
        + "a373657101a46b696e64a8646f63756d656e74a470656572a462657461a373657101a17601")
    assert rec.hash.hex() == "0ffe9dcd051cf4ea6f2782787c1b1923ef86177eb30a65fb36fd7bc9a9f9c7d7"


def test_second_record_chains_to_the_first_and_nil_peer_is_encoded_as_nil() -> None:
    first, second = make_log(2)
    assert second.prev_hash == first.hash
    assert msgpack.unpackb(first.record_bytes())["peer"] is None
    assert second.hash == audit.chain_hash(first.hash, second.record_bytes())


def test_time_never_goes_backwards_when_appending() -> None:
    first = make_log(1)[0]
    rec = audit.next_record(last_seq=1, last_hash=first.hash, last_at=first.at,
                            now=first.at - 5000, kind="refusal", peer=None, body={})
    assert rec.at == first.at


def test_kind_must_be_a_short_lowercase_name() -> None:
    with pytest.raises(ValueError):
        audit.next_record(last_seq=0, last_hash=audit.ZERO_HASH, last_at=0, now=0,
                          kind="Document; DROP", peer=None, body={})


# ---------------------------------------------------------------- an intact log


def test_intact_log_holds_with_summary_and_head() -> None:
    log = make_log(10)
    result = audit.check_chain(log)
    assert result.ok and result.problem is None
    assert result.records == 10 and result.head == log[-1].hash
    assert result.first_at == T0 and result.last_at == T0 + 9000
    assert sum(result.kinds.values()) == 10 and result.kinds["key"] == 2
    assert result.summary() == (f"10 records from 2026-03-02T15:00:00.000Z to "
                                f"2026-03-02T15:00:09.000Z, head {log[-1].hash.hex()}")
    assert audit.verify_chain(log).ok


def test_empty_log_holds() -> None:
    result = audit.check_chain([])
    assert result.ok and result.records == 0 and result.head == audit.ZERO_HASH
    assert result.summary() == "the audit log is empty"


# ---------------------------------------------------------------- attacks


def test_body_changed() -> None:
    log = make_log()
    log[4] = dataclasses.replace(log[4], body=msgpack.packb({"digest": bytes(32), "seq": 99},
                                                            use_bin_type=True))
    p = problem(log)
    assert (p.reason, p.seq, p.position) == ("changed", 5, 5)
    assert "record 5" in p.diagnosis and "changed" in p.diagnosis


@pytest.mark.parametrize("field,value", [("at", T0 + 1), ("kind", "refusal"),
                                         ("peer", "gamma"), ("peer", None)])
def test_time_kind_or_peer_changed(field: str, value: Any) -> None:
    log = make_log()
    log[3] = dataclasses.replace(log[3], **{field: value})
    p = problem(log)
    assert (p.reason, p.seq) == ("changed", 4)


def test_stored_hash_changed() -> None:
    log = make_log()
    log[2] = dataclasses.replace(log[2], hash=bytes(32))
    p = problem(log)
    # Record 3 no longer matches; it is named, not record 4 whose link now fails too.
    assert (p.reason, p.seq) == ("changed", 3)


def test_record_removed_from_the_middle() -> None:
    log = make_log()
    del log[4]
    p = problem(log)
    assert (p.reason, p.seq) == ("removed", 6)
    assert p.diagnosis == "record 5 is missing: after record 4 comes record 6"


def test_several_records_removed() -> None:
    log = make_log()
    del log[2:5]
    p = problem(log)
    assert p.reason == "removed" and "records 3–5 are missing" in p.diagnosis


def test_first_record_removed() -> None:
    p = problem(make_log()[1:])
    assert (p.reason, p.seq) == ("removed", 2)
    assert "after the start of the log" in p.diagnosis


def test_record_removed_and_the_rest_renumbered() -> None:
    log = make_log()
    del log[4]
    p = problem(renumber(log))
    assert (p.reason, p.seq) == ("changed", 5)


def test_two_records_swapped_by_their_numbers() -> None:
    """UPDATE audit SET seq = … : rows 4 and 5 trade places in the seq order."""
    log = make_log()
    log[3], log[4] = dataclasses.replace(log[4], seq=4), dataclasses.replace(log[3], seq=5)
    p = problem(log)
    assert (p.reason, p.seq) == ("reordered", 4)
    assert "record 4 was written after the record now numbered 5" in p.diagnosis


def test_two_records_swapped_keeping_numbers_in_order_of_rows() -> None:
    """The records handed over in another order than their numbers."""
    log = make_log()
    log[3], log[4] = log[4], log[3]
    p = problem(log)
    assert (p.reason, p.seq) == ("removed", 5)  # 5 stands where 4 should: 4 looks missing


def test_record_moved_to_the_end_and_renumbered() -> None:
    log = make_log()
    log.append(log.pop(2))
    p = problem(renumber(log))
    assert (p.reason, p.seq) == ("reordered", 3)
    assert "written after the record now numbered 8" in p.diagnosis


def test_record_inserted_and_the_rest_renumbered() -> None:
    log = make_log()
    forged = audit.next_record(last_seq=4, last_hash=log[3].hash, last_at=log[3].at,
                               now=log[3].at, kind="document", peer="beta",
                               body={"digest": bytes(32), "seq": 0})
    log.insert(4, forged)
    p = problem(renumber(log))
    assert (p.reason, p.seq) == ("inserted", 6)
    assert p.diagnosis == "record 5 was inserted: record 6 was written directly after record 4"


def test_record_rewritten_with_a_recomputed_hash() -> None:
    log = make_log()
    changed = dataclasses.replace(log[4], body=msgpack.packb({"forged": True},
                                                             use_bin_type=True))
    log[4] = dataclasses.replace(changed, hash=changed.computed_hash())
    p = problem(log)
    # Record 5 now holds on its own; the break shows at the link from record 6.
    assert (p.reason, p.seq) == ("chain_broken", 6)
    assert "record 5 was rewritten" in p.diagnosis


def test_record_appended_with_a_forged_prev_hash() -> None:
    log = make_log()
    last = log[-1]
    forged = audit.next_record(last_seq=last.seq, last_hash=bytes(range(32)), last_at=last.at,
                               now=last.at, kind="ack", peer="beta", body={})
    p = problem([*log, forged])
    assert (p.reason, p.seq) == ("chain_broken", 9)


def test_whole_log_rewritten_holds_but_its_head_changes() -> None:
    """The limit of an unkeyed chain: only a head written down earlier shows it."""
    log = make_log()
    head = audit.check_chain(log).head
    log[2] = dataclasses.replace(log[2], body=msgpack.packb({}, use_bin_type=True))
    forged = audit.check_chain(rechain(log))
    assert forged.ok and forged.head != head


def test_time_set_back_in_a_rewritten_log() -> None:
    log = make_log()
    log[5] = dataclasses.replace(log[5], at=T0)
    p = problem(rechain(log))
    assert (p.reason, p.seq) == ("time_order", 6)


def test_non_canonical_body_in_a_rewritten_log() -> None:
    log = make_log()
    log[2] = dataclasses.replace(log[2], body=b"\xcc\x01")  # 1 as uint 8: not canonical
    p = problem(rechain(log))
    assert (p.reason, p.seq) == ("bad_record", 3)


@pytest.mark.parametrize("field,value", [("seq", 0), ("seq", True), ("at", -1), ("kind", 7),
                                         ("peer", "Not A Party"), ("body", "text"),
                                         ("hash", b"short"), ("prev_hash", None)])
def test_malformed_field(field: str, value: Any) -> None:
    log = make_log()
    log[1] = dataclasses.replace(log[1], **{field: value})
    p = problem(log)
    assert (p.reason, p.position) == ("bad_record", 2)


def test_verify_chain_raises_naming_the_record() -> None:
    log = make_log()
    del log[6]
    with pytest.raises(VerificationError) as err:
        audit.verify_chain(log)
    assert err.value.reason == "removed" and str(err.value).startswith("record 8:")


def test_result_up_to_the_bad_record() -> None:
    log = make_log()
    del log[6]
    result = audit.check_chain(log)
    assert result.records == 6 and result.head == log[5].hash
    assert result.to_json()["seq"] == 8 and result.to_json()["reason"] == "removed"
    assert result.summary().endswith("[removed]")


# ---------------------------------------------------------------- the store against the log


def facts_of(records: list[audit.AuditRecord]) -> audit.StoreFacts:
    """What a store consistent with ``records`` holds."""
    f = audit.StoreFacts(documents=set(), outbox=set(), inbox=set(), receipts=set(),
                         refusals=0, issued={}, leaves=len(records), checkpoint=0)
    refusals = 0
    for r in records:
        b = r.decoded_body()
        if r.kind in (audit.DOCUMENT, audit.ACK):
            f.documents.add(b["digest"])
        elif r.kind == audit.ENVELOPE_QUEUED:
            f.outbox.add((str(r.peer), b["seq"], b["digest"]))
        elif r.kind == audit.ENVELOPE_RECEIVED:
            f.inbox.add((str(r.peer), b["seq"], b["digest"]))
        elif r.kind == audit.RECEIPT_RECEIVED:
            f.receipts.add((str(r.peer), b["seq"]))
        elif r.kind == audit.RECEIPT_ISSUED:
            f.issued[(str(r.peer), b["seq"])] = hashlib.sha256(b["receipt"]).digest()
        elif r.kind == audit.REFUSAL:
            refusals += 1
    return dataclasses.replace(f, refusals=refusals)


def test_store_agreeing_with_the_log() -> None:
    log = make_log(16)
    assert audit.check_store(log, facts_of(log)) is None


def test_log_tail_cut_off_shows_against_the_store() -> None:
    log = make_log(16)
    facts = facts_of(log)
    why = audit.check_store(log[:-3], facts)
    assert why == ("the log's tree has 16 leaves but the audit log 13 records: "
                   "records 14–16 are missing (its tail cut off)")


def test_operator_cuts_the_last_records_of_the_log_whatever_their_kind() -> None:
    """Each tail, one record to all but one: the tree of the log still counts every record
    (a key event, which has no row of its own, included)."""
    log = make_log(16)
    facts = facts_of(log)
    for n in range(1, 16):
        why = audit.check_store(log[:-n], facts)
        assert why is not None and why.endswith("(its tail cut off)"), (n, why)


def test_operator_cuts_a_trailing_receipt_issued_and_its_tree_leaf() -> None:
    """The last record a receipt we issued, cut off with its leaf of the tree to hide that
    the receipt was issued: the inbox row that keeps the receipt still names it."""
    log = make_log(6)
    assert log[-1].kind == audit.RECEIPT_ISSUED
    facts = dataclasses.replace(facts_of(log), leaves=5)
    assert audit.check_store(log[:-1], facts) == (
        "the receipt we issued for inbound envelope 5 (beta) is in the store but not in the "
        "audit log")


def test_operator_cuts_a_tail_the_party_signed_a_checkpoint_of() -> None:
    """Records and tree cut off alike: the checkpoint the party signed of the longer log
    still counts them."""
    log = make_log(8)
    facts = dataclasses.replace(facts_of(log[:5]), checkpoint=8)
    assert audit.check_store(log[:5], facts) == (
        "the party signed a checkpoint of 8 records but the audit log has 5: records 6–8 are "
        "missing (its tail cut off)")


def test_record_appended_behind_the_daemons_back_without_its_leaf() -> None:
    log = make_log(8)
    facts = dataclasses.replace(facts_of(log), leaves=7)
    why = audit.check_store(log, facts)
    assert why == ("the audit log has 8 records but its tree 7 leaves: records were appended "
                   "behind the daemon's back")


def test_issued_receipt_rewritten_in_the_store() -> None:
    log = make_log(8)
    facts = facts_of(log)
    facts.issued[("beta", 5)] = bytes(32)
    assert audit.check_store(log, facts) == (
        "the receipt we issued for inbound envelope 5 (beta) in the store is not the one the "
        "audit log records")


def test_store_row_added_behind_the_log() -> None:
    log = make_log(16)
    facts = facts_of(log)
    facts.outbox.add(("beta", 99, bytes(32)))
    why = audit.check_store(log, facts)
    assert why is not None and "outbound envelope 99" in why


def test_store_row_removed_behind_the_log() -> None:
    log = make_log(16)
    facts = facts_of(log)
    facts.documents.pop()
    why = audit.check_store(log, facts)
    assert why is not None and "in the audit log but not in the store" in why


def test_refusal_removed_from_the_store() -> None:
    log = make_log(16)
    facts = dataclasses.replace(facts_of(log), refusals=1)
    assert audit.check_store(log, facts) == "the store holds 1 refusals, the audit log 2"


# ---------------------------------------------------------------- appending in the store


def stored(store: Store) -> list[audit.AuditRecord]:
    return store.check_rows().audit_records()


def test_store_appends_a_chain_that_verifies(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    with store.transaction():
        for k in range(5):
            store.append_audit(kind="document", peer="beta", body={"k": k}, now=T0 + k)
    assert audit.check_chain(stored(store)).records == 5
    store.close()


def test_a_record_rolls_back_with_its_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.append_audit(kind="document", peer="beta", body={}, now=T0)
        raise RuntimeError("the change failed")
    assert stored(store) == []
    store.close()


def test_no_record_outside_a_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    with pytest.raises(StoreError):
        store.append_audit(kind="document", peer="beta", body={}, now=T0)
    store.close()


def test_audit_logic_imports_no_io_framework() -> None:
    code = ("import json, sys, bridge.core.audit, bridge.core.transcript\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('asyncio', 'aiohttp', 'sqlite3', '_sqlite3'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []


# ---------------------------------------------------------------- key events


def key_events(store: Store) -> list[tuple[str | None, str, str]]:
    out = []
    for r in stored(store):
        if r.kind == audit.KEY:
            b = r.decoded_body()
            out.append((r.peer, b["role"], b["event"]))
    return out


def test_key_events_recorded_once_then_on_change(tmp_path: Path) -> None:
    me, peer = make_identity("alpha"), make_identity("beta")
    store = Store(tmp_path / "bridge.db")
    config = Config(party="alpha", listen="127.0.0.1:7443")

    def start(peers: dict[str, Any]) -> None:
        Exchange(store=store, identity=me, peers=peers, config=config, clock=lambda: T0)

    start({"beta": peer.public})
    assert key_events(store) == [(None, "self", "added"), ("beta", "peer", "added")]
    start({"beta": peer.public})  # a restart with the same keys records nothing
    assert len(key_events(store)) == 2
    start({"beta": make_identity("beta", seed="beta-rotated").public})
    assert key_events(store)[2:] == [("beta", "peer", "changed")]
    start({})
    assert key_events(store)[3:] == [("beta", "peer", "removed")]
    assert audit.check_chain(stored(store)).ok
    store.close()
