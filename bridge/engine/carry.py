"""The offline carrier, the engine's side (PROTOCOL.md §12): which of our envelopes a carrier
file takes, whether a file is for us and from a pinned peer, and what an answer brought back
in a file does to its outbox row.

Nothing here is new delivery logic. An envelope in a file is received by
``Exchange.receive_envelope`` exactly as one the HTTP endpoint took; an answer in a file is
handed to ``Delivery.answered`` exactly as one the courier brought. This module only finds the
rows and says, for the file's report, what became of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core import carry
from bridge.core.carry import CarryHeader, FileKind
from bridge.core.errors import InputError
from bridge.core.printable import printable
from bridge.engine.context import Engine
from bridge.engine.delivery import Delivery
from bridge.engine.outcomes import DeliveryState
from bridge.store.sqlite.store import OutboxRow

# What became of one answer a carrier file brought back: the delivery states, and one more.
ALREADY = "already"  # the row was finished before (by an earlier file, or by the courier)


@dataclass(frozen=True, kw_only=True)
class AnswerResult:
    state: str  # a DeliveryState value, or ALREADY
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.state in (DeliveryState.DELIVERED, DeliveryState.REFUSED)


class Carry:
    def __init__(self, engine: Engine, delivery: Delivery) -> None:
        self.e = engine
        self.delivery = delivery

    def check_peer(self, peer: str) -> None:
        if not self.e.trust.is_pinned(peer):
            raise InputError(f"no pinned peer named {printable(peer)}", field="peer",
                             code="unknown_peer")

    def export_rows(self, peer: str, after: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` of our envelopes to ``peer`` not yet answered, after seq ``after``,
        in sequence order. Each counts as an attempt (its items read "sent"), as a courier's
        try does: the file is a transport like any other."""
        self.check_peer(peer)
        rows = self.e.store.pending_rows(peer, after, limit)
        with self.e.store.transaction():
            for row in rows:
                self.delivery.counted(row)
        return rows

    def pending_count(self, peer: str) -> int:
        self.check_peer(peer)
        return self.e.store.pending_count(peer)

    def check_header(self, header: CarryHeader, kind: FileKind) -> None:
        """A file not for us, or not from a pinned peer's key, is refused whole (PeerError)."""
        trust = self.e.trust
        carry.check_header(header, kind, me=trust.me.party,
                           own_keys=[k.key_id for k in trust.own],
                           peer_keys={kid: ident.party
                                      for kid, ident in trust.keyring.by_id.items()
                                      if trust.is_pinned(ident.party)})

    def answered(self, peer: str, seq: int, envelope: bytes, body: bytes) -> AnswerResult:
        """One signed answer a file brought from ``peer`` to our envelope ``seq``: the same
        engine path as the courier's answers (``Delivery.answered``). ``envelope`` only finds
        the row; the signed answer must name it too (PROTOCOL §8.3)."""
        row = self.e.store.pending_row(peer, seq)
        if row is None:
            done = self.e.store.outbox_digest(peer, seq)
            if done is None:
                return AnswerResult(state=DeliveryState.FAILED,
                                    detail=f"we sent {peer} no envelope {seq}")
            if done != envelope:
                return AnswerResult(state=DeliveryState.FAILED,
                                    detail=f"envelope {seq} to {peer} has another hash")
            return AnswerResult(state=ALREADY, detail="answered before")
        if row.digest != envelope:
            return AnswerResult(state=DeliveryState.FAILED,
                                detail=f"envelope {seq} to {peer} has another hash")
        outcome = self.delivery.answered(row, body, "the carrier file's answer")
        return AnswerResult(state=outcome.state.value, detail=outcome.detail)
