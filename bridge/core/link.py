"""Per-peer, per-direction link state: sequence numbers, the hash chain, duplicates, gaps, forks.

Pure: no I/O. The store keeps what this module needs (the last accepted sequence number and
envelope hash, and what was accepted before) and asks it what to do with each envelope that has
already been authenticated (``envelope.open_envelope``) — or, for an exact byte-for-byte
duplicate, before authenticating again, since identical bytes were authenticated once already.

The verdicts, in the order they are decided:

- ``Duplicate``: the same sequence number with the same envelope hash. Answer with the original
  transport receipt, not an error (a retry must converge, not loop).
- ``Equivocation``: the same sequence number with a different hash, or an envelope at the next
  sequence number whose ``prev`` does not name the last accepted envelope (a fork). Refuse,
  record, raise a security alarm.
- ``Gap``: a sequence number beyond the next expected one. Refuse and say which one is expected;
  the sender resends from there.
- ``Accept``: the next sequence number, chained to the last accepted envelope.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

ZERO_HASH = bytes(32)


@dataclass(frozen=True, kw_only=True)
class InboundState:
    """What has been accepted from one peer so far. ``last_seq`` 0 means nothing yet."""

    last_seq: int
    last_digest: bytes = ZERO_HASH

    def __post_init__(self) -> None:
        if self.last_seq < 0 or len(self.last_digest) != 32:
            raise ValueError("invalid inbound state")
        if self.last_seq == 0 and self.last_digest != ZERO_HASH:
            raise ValueError("an empty link has the zero hash")

    @property
    def expected_seq(self) -> int:
        return self.last_seq + 1

    def after(self, seq: int, digest: bytes) -> InboundState:
        if seq != self.expected_seq:
            raise ValueError("can only advance by one")
        return InboundState(last_seq=seq, last_digest=digest)


@dataclass(frozen=True, kw_only=True)
class Accept:
    seq: int


@dataclass(frozen=True, kw_only=True)
class Duplicate:
    seq: int
    receipt: bytes


@dataclass(frozen=True, kw_only=True)
class Gap:
    expected_seq: int
    got_seq: int


@dataclass(frozen=True, kw_only=True)
class Equivocation:
    seq: int
    why: str


Verdict = Accept | Duplicate | Gap | Equivocation
# Looks up an accepted envelope by sequence number: (its hash, its transport receipt) or None.
Lookup = Callable[[int], tuple[bytes, bytes] | None]


def classify(state: InboundState, *, seq: int, prev: bytes, digest: bytes,
             lookup: Lookup) -> Verdict:
    """Decide what to do with an envelope at ``seq`` chained to ``prev`` with hash ``digest``."""
    if seq < state.expected_seq:
        seen = lookup(seq)
        if seen is None:  # pruned history; cannot tell, so treat as a replay of something old
            return Equivocation(seq=seq, why=f"sequence number {seq} is already past")
        seen_digest, receipt = seen
        if hmac.compare_digest(seen_digest, digest):
            return Duplicate(seq=seq, receipt=receipt)
        return Equivocation(seq=seq, why=f"a different envelope was accepted at sequence {seq}")
    if seq > state.expected_seq:
        return Gap(expected_seq=state.expected_seq, got_seq=seq)
    if not hmac.compare_digest(prev, state.last_digest):
        return Equivocation(seq=seq, why=f"envelope {seq} does not chain to envelope {seq - 1} "
                                         "as accepted (a fork)")
    return Accept(seq=seq)


@dataclass(frozen=True, kw_only=True)
class OutboundState:
    """The sender's side: the last sequence number assigned and its envelope hash."""

    last_seq: int
    last_digest: bytes = ZERO_HASH

    def next(self) -> tuple[int, bytes]:
        """Sequence number and ``prev`` for the next envelope to seal."""
        return self.last_seq + 1, self.last_digest

    def after(self, seq: int, digest: bytes) -> OutboundState:
        if seq != self.last_seq + 1:
            raise ValueError("can only advance by one")
        return OutboundState(last_seq=seq, last_digest=digest)
