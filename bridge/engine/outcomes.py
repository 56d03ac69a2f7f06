"""What the engine decides, as enums: never an HTTP status code. A transport maps them to its
own signals (the HTTP endpoint to status codes, ``bridge.transports.http.endpoint``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridge.core.errors import UsageError


class Outcome(enum.StrEnum):
    """What became of one envelope a peer sent us (PROTOCOL.md §8.3)."""

    ACCEPTED = "accepted"  # taken into the chain, its content applied
    DUPLICATE = "duplicate"  # taken before: the stored receipt, signed again
    REFUSED = "refused"  # taken into the chain, its content refused (a signed refusal)
    MALFORMED = "malformed"  # rejected: not an envelope we can read
    UNAUTHENTICATED = "unauthenticated"  # rejected: not sealed and signed by a key in force
    OUT_OF_SEQUENCE = "out_of_sequence"  # rejected: a gap or an equivocation
    UNAVAILABLE = "unavailable"  # nothing decided: our store cannot record it now

    @property
    def counted_as(self) -> str:
        """The name metrics and logs use: the three rejections are counted as one."""
        return "rejected" if self in REJECTIONS else self.value


REJECTIONS = frozenset({Outcome.MALFORMED, Outcome.UNAUTHENTICATED, Outcome.OUT_OF_SEQUENCE})


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The engine's answer to one envelope: its outcome and the signed transport answer
    (PROTOCOL.md §8.3) the sender gets back, whatever the transport."""

    outcome: Outcome
    body: bytes
    reason: str | None = None  # the reason code of a refusal or rejection

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, Outcome):
            raise UsageError("an answer's outcome is an Outcome")


class DeliveryState(enum.StrEnum):
    """What the peer's answer to one of our envelopes means for its outbox row."""

    DELIVERED = "delivered"  # the peer took it: progress
    REFUSED = "refused"  # the peer took its place in the chain, refusing its content: progress
    REWOUND = "rewound"  # the peer asks for an earlier envelope (a gap)
    OVERTAKEN = "overtaken"  # a gap naming an envelope of ours still on its way (§8.7)
    UNAVAILABLE = "unavailable"  # the peer could not decide now
    FAILED = "failed"  # no valid answer bound to this envelope

    @property
    def progress(self) -> bool:
        """Did the peer decide on the envelope (the outbox moves forward)?"""
        return self in (DeliveryState.DELIVERED, DeliveryState.REFUSED)


@dataclass(frozen=True, kw_only=True)
class DeliveryOutcome:
    state: DeliveryState
    detail: str = ""
    trouble: str | None = None  # a reason code more exact than the state (link_status.py)

    def __post_init__(self) -> None:
        if not isinstance(self.state, DeliveryState):
            raise UsageError("a delivery outcome's state is a DeliveryState")
