"""The whole-document receipt streamed from the store a page at a time
(``bridge/engine/receipt_stream.py``) is byte for byte the one built from the documents held
whole, on both sides and whatever the size of its pieces; an entry changed behind the
daemon's back stops it short with the alarm, never a whole receipt that does not verify.
Real engines on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core import codec, receipts
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import StoreCorrupt
from bridge.engine.receipt_stream import DocumentReceipt
from bridge.store.sqlite import check


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    """M-1 (twenty persons: more than a fixarray holds) acknowledged three times: a dispute,
    all the rest RECEIVED, a later status."""
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(20)],
                    doc_id="M-1")
        harness.courier.settle()
        b = harness.beta.engine
        wire.acknowledge(b, "M-1", items=[{"id": "P-00003", "status": "DISPUTED",
                                           "reason": "not this person"}])
        harness.clock.advance(ms=1000)
        wire.acknowledge(b, "M-1", all="RECEIVED")
        harness.clock.advance(ms=1000)
        wire.acknowledge(b, "M-1", items=[{"id": "P-00003", "status": "IDENTITY_CONFIRMED"}])
        harness.courier.settle()
        yield harness


@pytest.mark.parametrize("piece", [1, 100, 1 << 20])
def test_streamed_receipt_is_byte_for_byte_the_one_built_whole(
        h: Harness, piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "PAGE", 3)  # entries read three at a time
    for engine, direction in ((h.alpha.engine, "out"), (h.beta.engine, "in")):
        whole = engine.receipt("M-1", None, direction)
        made = DocumentReceipt(engine.engine, "M-1", direction)
        pieces = []
        while chunk := made.next_piece(piece):
            pieces.append(chunk)
        assert b"".join(pieces) == whole
        assert piece > 1000 or len(pieces) > 3
        result = receipts.verify_receipt(whole, engine.engine.trust.receipt_keyring())
        assert (result.item_count, result.ack_count) == (20, 3)


@pytest.mark.parametrize("n", [0, 15, 16, 65535, 65536])
def test_an_array_is_its_header_then_its_elements(n: int) -> None:
    """What the streamed receipt relies on: the canonical encoding of an array of entries is
    msgpack's array header then each entry's encoding, at every header size."""
    import msgpack
    leaves = [bytes([k % 251]) * (k % 7) for k in range(n)]
    packer = msgpack.Packer(use_bin_type=True)
    streamed = packer.pack_array_header(n) + b"".join(packer.pack(x) for x in leaves)
    assert streamed == codec.encode(leaves)


def test_entry_changed_behind_the_daemon_s_back_stops_the_receipt_with_the_alarm(
        h: Harness) -> None:
    """The last entry's bytes changed (still a canonical entry, its surname): the receipt's
    first pieces went out, then its root does not hold and it stops; the alarm is raised and
    the document is no longer served."""
    con = sqlite3.connect(h.beta.home.db_path)
    try:
        with con:
            (leaf,), = con.execute("SELECT leaf FROM item_leaves WHERE (doc, idx) = (SELECT "
                                   "doc, idx FROM items WHERE item_id = 'P-00019')")
            con.execute("UPDATE item_leaves SET leaf = ? WHERE (doc, idx) = (SELECT doc, idx "
                        "FROM items WHERE item_id = 'P-00019')",
                        (bytes(leaf).replace(b"Testname19", b"Testnamf19"),))
    finally:
        con.close()
    made = DocumentReceipt(h.beta.engine.engine, "M-1", "in")
    out = []
    with pytest.raises(StoreCorrupt, match="does not verify"):
        while chunk := made.next_piece(1):
            out.append(chunk)
    assert out  # it had begun
    assert wire.health(h.beta.engine)["status"] == "store_corrupt"
    with pytest.raises(StoreCorrupt):
        DocumentReceipt(h.beta.engine.engine, "M-1", "in")


def test_entry_bytes_deleted_behind_the_daemon_s_back_stop_the_receipt_naming_them(
        h: Harness) -> None:
    """An entry's bytes row deleted: the receipt stops where it would need them, the fault
    named as the store check names it (not an empty entry, not a crash), the alarm raised."""
    con = sqlite3.connect(h.beta.home.db_path)
    try:
        with con:
            con.execute("DELETE FROM item_leaves WHERE (doc, idx) = (SELECT doc, idx "
                        "FROM items WHERE item_id = 'P-00019')")
    finally:
        con.close()
    made = DocumentReceipt(h.beta.engine.engine, "M-1", "in")
    with pytest.raises(StoreCorrupt, match=r"P-00019.*signed bytes are missing from the store"):
        while made.next_piece(1):
            pass
    assert wire.health(h.beta.engine)["status"] == "store_corrupt"


def test_streamed_receipt_with_witnessed_times_is_the_one_built_whole(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``witnessed`` evidence (PROTOCOL.md §13.5) the whole receipt is re-encoded with
    it; the streamed one puts it in the same place."""
    from bridge.engine.witnessing import Witnessing
    evidence = [{"checkpoint": b"x" * 40, "digest": b"d" * 32, "index": 3}]
    monkeypatch.setattr(Witnessing, "evidence", lambda self, digests: evidence)
    whole = h.alpha.engine.receipt("M-1", None, "out")
    assert codec.decode(whole, receipts.RECEIPT_LIMITS)["witnessed"] == evidence
    streamed = b"".join(DocumentReceipt(h.alpha.engine.engine, "M-1", "out").pieces())
    assert streamed == whole
