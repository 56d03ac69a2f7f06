"""What the steps of a transcript check share as they go: the failure of a step, a document
with what its envelopes carried so far, the times seen, and the revocation rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.core.crypto.identity import Keyring, PublicIdentity
from bridge.core.documents import ACK, SignedHeader
from bridge.core.errors import VerificationError
from bridge.core.pieces import Run


def fail(message: str, reason: str) -> VerificationError:
    return VerificationError(message, reason=reason)


@dataclass
class CheckedDocument:
    """A document of the transcript, as the checks go along."""

    position: int
    signed: SignedHeader
    entries: Run | None  # where its entries are in the file (None: not included)
    acks: list[CheckedDocument] = field(default_factory=list)
    carried: int = 0  # entries carried so far, in envelope order (any result)
    chunk: int = 0  # the chunk size C, from the first chunk carried (PROTOCOL.md §8.1)
    delivered: int = 0  # entries carried by accepted envelopes

    @property
    def name(self) -> str:
        h = self.signed.header
        return f"{'acknowledgement' if h.type == ACK else h.type} {h.id}"


class Times:
    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def see(self, ms: int) -> None:
        self.first = ms if self.first is None else min(self.first, ms)
        self.last = ms if self.last is None else max(self.last, ms)


def not_revoked(keys: Keyring, signer: PublicIdentity, at: int, what: str) -> None:
    """A revocation given with the keys voids the key's signatures dated from its ``since``,
    and a rotation those dated after it (PROTOCOL.md §4.5), as for receipts."""
    keys.check_in_force(signer, at, what)


__all__ = ["CheckedDocument", "Times", "fail", "not_revoked"]
