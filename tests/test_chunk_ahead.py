"""A received chunk's pure work done ahead of its turn (``bridge.engine.chunk_ahead``,
``Inbound.open_ahead``): what is prepared is exactly what the database thread would make, the
store gets the same rows as without it, and nothing prepared is ever taken for an envelope it
was not prepared from. Two real engines (``harness``), their envelopes carried by hand so that
each can be given what a process beside the daemon would have answered (through pickle, as a
process's answer comes)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core import chunks, envelope
from bridge.core.ack_runs import ack_columns
from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine import intake
from bridge.engine.chunk_ahead import (
    Ahead,
    PreparedChunk,
    declared_of,
    parse_chunk,
    prepare_chunk,
)
from bridge.engine.exchange import Exchange
from bridge.engine.inbound import decode_envelope

N = 10  # three chunks of the harness's 4 entries


def _manifest(n: int = N) -> list[dict[str, Any]]:
    return [person(k) | {"kind": "person", "category": "pow", "roster_record": f"POW-{k:05d}"}
            for k in range(n)]


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path / "one", alpha, beta) as harness:
        yield harness


@pytest.fixture
def twin(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    """Another pair of the same parties: its beta takes the same envelopes with nothing
    prepared, to compare with."""
    with open_pair(tmp_path / "twin", alpha, beta) as harness:
        yield harness


def _beside(payload: bytes) -> PreparedChunk | None:
    """``prepare_chunk`` as a process answers it: its argument and answer through pickle."""
    answer = prepare_chunk(pickle.loads(pickle.dumps(payload)))
    return pickle.loads(pickle.dumps(answer))


def _ahead(receiver: Exchange, data: bytes) -> Ahead | None:
    payload = receiver.open_ahead(data, decode_envelope(data))
    prepared = _beside(payload) if payload is not None else None
    return Ahead(payload=payload, prepared=prepared) if payload and prepared else None


def _carry(h: Harness, sender: str, ahead: Any = _ahead, *, also: Exchange | None = None
           ) -> list[bytes]:
    """Every envelope ``sender`` has pending, received by the other side with what ``ahead``
    gives for it (and by ``also``, with nothing), each answer taken back: their bytes."""
    src, dst = (h.alpha, h.beta) if sender == "alpha" else (h.beta, h.alpha)
    sent = []
    for pending in wire.pending_batch(src.engine, dst.engine.me.party, 1 << 10):
        answer = dst.engine.receive_envelope(pending.data, None, ahead(dst.engine, pending.data))
        assert answer.outcome.counted_as == "accepted", answer
        if also is not None:
            assert also.receive_envelope(pending.data).outcome.counted_as == "accepted"
        assert src.engine.tried(pending.row, answer.body, "by hand").state == "delivered"
        sent.append(pending.data)
    return sent


def _rows(engine: Exchange) -> list[tuple[Any, ...]]:
    return wire.sql(engine).execute(
        "SELECT i.idx, item_id, leaf, lh, category, roster_record, status FROM items i "
        "JOIN item_leaves l ON l.doc = i.doc AND l.idx = i.idx ORDER BY i.idx").fetchall()


def _payloads(h: Harness, receiver: Exchange, sent: list[bytes]) -> list[bytes]:
    out = []
    for data in sent:
        payload = receiver.open_ahead(data, decode_envelope(data))
        assert payload is not None
        out.append(payload)
    return out


# ---------------------------------------------------------------- the pure work itself

def test_what_is_prepared_is_what_the_database_thread_makes(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    sent = [p.data for p in wire.pending_batch(h.alpha.engine, "beta", 10)]
    for payload in _payloads(h, h.beta.engine, sent):
        chunk = chunks.parse(payload, chunks.PAYLOAD_LIMITS)
        prepared = _beside(payload)
        assert prepared == PreparedChunk(chunk=chunk, declared=declared_of(chunk))
        assert prepared.declared is not None and set(prepared.declared[1]) == {"pow"}
        assert parse_chunk(payload) == PreparedChunk(chunk=chunk)  # the thread's own parse


def test_a_roster_chunk_has_no_manifest_columns(h: Harness) -> None:
    wire.submit(h.alpha.engine, "roster", "beta", [person(k) for k in range(3)], doc_id="R-1")
    (payload,) = _payloads(h, h.beta.engine,
                           [p.data for p in wire.pending_batch(h.alpha.engine, "beta", 10)])
    prepared = _beside(payload)
    assert prepared is not None and prepared.declared is not None
    assert prepared.declared[0] == [f"P-{k:05d}" for k in range(3)]
    assert prepared.declared[1:] == ([None] * 3, [None] * 3)


def test_an_acknowledgements_chunk_is_prepared_as_its_columns(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    _carry(h, "alpha")
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    sent = [p.data for p in wire.pending_batch(h.beta.engine, "alpha", 10)]
    for payload in _payloads(h, h.alpha.engine, sent):
        prepared = _beside(payload)
        assert prepared is not None and prepared.declared is None
        assert prepared.acked == ack_columns(prepared.chunk.entries, prepared.chunk.first)


def test_a_chunk_whose_entries_do_not_match_its_root_is_left_to_its_turn(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    payload = _payloads(h, h.beta.engine,
                        [p.data for p in wire.pending_batch(h.alpha.engine, "beta", 1)])[0]
    value = chunks.codec.decode(payload, chunks.PAYLOAD_LIMITS)
    value["entries"][1] = value["entries"][2]  # another item's entry in its place
    forged = chunks.codec.encode(value)
    assert prepare_chunk(forged) is None  # nothing prepared: the turn names the fault
    with pytest.raises(chunks.VerificationError, match="signed root"):
        parse_chunk(forged)
    assert prepare_chunk(b"\xc1 not msgpack") is None


# ---------------------------------------------------------------- taken on its turn

def test_chunks_prepared_ahead_store_the_same_rows_as_without(
        h: Harness, twin: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")

    def not_on_the_thread(_: Any) -> Any:
        raise AssertionError("the database thread made columns that were prepared")

    monkeypatch.setattr(intake, "declared_of", not_on_the_thread)
    sent = []
    for pending in wire.pending_batch(h.alpha.engine, "beta", 10):
        answer = h.beta.engine.receive_envelope(pending.data, None,
                                                _ahead(h.beta.engine, pending.data))
        assert answer.outcome.counted_as == "accepted"
        sent.append(pending.data)
    monkeypatch.undo()
    for data in sent:
        assert twin.beta.engine.receive_envelope(data).outcome.counted_as == "accepted"
    assert _rows(h.beta.engine) == _rows(twin.beta.engine)
    assert len(_rows(h.beta.engine)) == N
    assert wire.document(h.beta.engine, "M-1", "in")["state"] == "received"


def test_an_acknowledgement_prepared_ahead_sets_every_status(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    _carry(h, "alpha")
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    with monkeypatch.context() as m:
        m.setattr(intake, "ack_columns", lambda *a: pytest.fail("made on the thread"))
        assert len(_carry(h, "beta")) == 3
    assert wire.document(h.alpha.engine, "M-1")["state"] == "acknowledged"
    assert {i["status"] for i in wire.items(h.alpha.engine, "M-1")} == {"RECEIVED"}
    assert wire.receipt_summary(h.alpha.engine, "M-1", "P-00009")


def test_work_prepared_from_another_payload_is_never_taken(h: Harness, twin: Harness) -> None:
    """An attack on the hand-over (or a mix-up of two envelopes in flight): chunk 0's
    envelope comes with what was prepared from chunk 1's payload. Its turn opens chunk 0
    itself, sees the bytes differ, and stores chunk 0's entries."""
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    pending = wire.pending_batch(h.alpha.engine, "beta", 10)
    wrong = _ahead(h.beta.engine, pending[1].data)
    assert wrong is not None
    for k, p in enumerate(pending):
        ahead = wrong if k == 0 else None
        assert h.beta.engine.receive_envelope(p.data, None, ahead).outcome.counted_as == \
            "accepted"
        assert twin.beta.engine.receive_envelope(p.data).outcome.counted_as == "accepted"
    assert _rows(h.beta.engine) == _rows(twin.beta.engine)
    assert [r[1] for r in _rows(h.beta.engine)] == [f"P-{k:05d}" for k in range(N)]


# ---------------------------------------------------------------- opened ahead

def test_only_a_pinned_peers_chunk_to_us_is_opened_ahead(
        h: Harness, tmp_path: Path, beta: PrivateIdentity) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    data = wire.pending_batch(h.alpha.engine, "beta", 1)[0].data
    receiver = h.beta.engine
    assert receiver.open_ahead(data, decode_envelope(data)) is not None
    tampered = data[:-1] + bytes([data[-1] ^ 1])  # a bit of its ciphertext or signature
    assert receiver.open_ahead(tampered, decode_envelope(tampered)) is None
    assert receiver.open_ahead(b"junk", decode_envelope(b"junk")) is None
    # Sent to alpha itself is not to beta: alpha cannot open what is sealed to beta.
    assert h.alpha.engine.open_ahead(data, decode_envelope(data)) is None
    header = envelope.parse(data)[0]
    assert header.kind == "chunk" and header.sender == "alpha"


def test_a_key_statement_is_never_opened_ahead(h: Harness) -> None:
    wire.rotate_key(h.alpha.engine)
    (p,) = [p for p in wire.pending_batch(h.alpha.engine, "beta", 10)
            if envelope.parse(p.data)[0].kind != "chunk"]
    assert h.beta.engine.open_ahead(p.data, decode_envelope(p.data)) is None


def test_the_whole_exchange_prepared_ahead_leaves_a_sound_store(h: Harness,
                                                                  twin: Harness) -> None:
    """Everything prepared ahead, both ways: each store passes the daemon's check at start
    (every row is what was signed), and beta's items are the twin's."""
    wire.submit(h.alpha.engine, "manifest", "beta", _manifest(), doc_id="M-1")
    _carry(h, "alpha", also=twin.beta.engine)
    assert _rows(h.beta.engine) == _rows(twin.beta.engine)
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    _carry(h, "beta")
    for engine in (h.alpha.engine, h.beta.engine):
        assert engine.check_store() == []
