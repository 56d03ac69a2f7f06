"""The whole-document receipt streamed from the store (``bridge/core/receipts/stream.py``):
a page of entries at a time, each document checked as it goes as ``bridge verify`` will check
it, so a million-item document's receipt leaves in bounded memory, byte for byte the one built
from the documents held whole. What a check finds on the way raises the alarm (the store is
not what was signed) and stops the receipt there, never a whole file that does not verify.
"""

from __future__ import annotations

from collections.abc import Iterator

from bridge.core.errors import BridgeError, InputError, StoreCorrupt
from bridge.core.receipts.stream import stream_document_receipt
from bridge.engine.context import Engine
from bridge.engine.found import find_document
from bridge.engine.health import where
from bridge.engine.store_check import StoreFault, check_declared_entry
from bridge.engine.witnessing import Witnessing
from bridge.store.sqlite.check import DeclaredEntry

PIECE_BYTES = 1 << 20
"""About this much of a receipt is made per call (``pieces``): a page or two of entries."""


class DocumentReceipt:
    """The whole-document receipt of one document, made a piece at a time (``next_piece``
    on the database thread, between which other work goes on)."""

    def __init__(self, engine: Engine, doc_id: str, direction: str | None) -> None:
        self.e = engine
        self.row = row = find_document(engine, doc_id, direction)
        held = engine.store.acks_of(row.rowid)  # oldest first
        if not held:
            raise InputError(f"document {doc_id} has no acknowledgement yet", field="id",
                             code="not_ready")
        rows = engine.store.check_rows()
        acks = [(engine.guard.stored_header(a),
                 ((x.leaf, x.declared_lh) for x in rows.ack_entries(a.rowid))) for a in held]
        evidence = Witnessing(engine).evidence({row.digest, *(a.digest for a in held)})
        self._pieces = stream_document_receipt(
            engine.guard.stored_header(row), _present(rows.declared_entries(row.rowid)),
            acks, engine.trust.receipt_keyring(), witnessed=evidence or None)

    def next_piece(self, size: int = PIECE_BYTES) -> bytes:
        """The next ``size`` bytes or so; b"" once it is all out."""
        out: list[bytes] = []
        got = 0
        try:
            for piece in self._pieces:
                out.append(piece)
                got += len(piece)
                if got >= size:
                    break
        except InputError:
            raise
        except BridgeError as exc:  # not what was signed: the fault is the store's
            self.e.guard.corrupt(StoreFault(where=where(self.row), doc=self.row.rowid,
                                            what=f"a receipt built from it does not verify: "
                                                 f"{exc}"))
        return b"".join(out)

    def pieces(self) -> Iterator[bytes]:
        while piece := self.next_piece():
            yield piece


def _present(entries: Iterator[DeclaredEntry]) -> Iterator[bytes]:
    """Each entry's bytes; one whose bytes row is missing stops the receipt, the fault
    named as the store check names it (a ``BridgeError``: ``next_piece`` raises the alarm)."""
    for e in entries:
        if e.leaf is None:
            raise StoreCorrupt(str(check_declared_entry(e.idx, e.item_id, None, e.lh)))
        yield e.leaf


__all__ = ["PIECE_BYTES", "DocumentReceipt"]
