"""The mark of the last complete store check: how far the store was found to be what was
signed, signed by the party's own key, so the check at start need read only what came after it
(SECURITY.md, "A damaged store").

What the mark says: every document up to row ``documents`` (whose digest it names, so the
mark belongs to this store and that row was not replaced) held, except the inbound documents
then still arriving (``open``), checked again; and the audit log then ended at record
``audit_seq`` with hash ``audit_head`` (a log cut or rewritten below it is no longer the one
the mark saw); and no store_corrupt alarm was raised after its last event (damage found since
voids it). A mark that does not verify by one of the party's own keys, or does not fit the
store, is no mark: the whole check runs at start, as it did before marks.

Anyone who can write the store file can delete the mark or put back an older one, never make
one: it is signed with the key in the sealed key file, under a tag of its own (PROTOCOL.md §3),
so it cannot be passed off as anything the party signs for its peer, nor any of those as it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.core import codec
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import BridgeError, StoreError

TAG_STORE_CHECK = b"bridge/v1/store-check"
"""The signature tag of a store check mark: local to one party, never sent."""

MAX_OPEN = 4096
"""Documents still arriving that one mark names, at most (a peer sends a few at a time)."""


@dataclass(frozen=True, kw_only=True)
class CheckMark:
    documents: int  # the highest document row found to hold (0: none)
    digest: bytes  # that document's digest (b"" when there is none)
    open: tuple[int, ...]  # inbound documents at or below it not yet whole then
    audit_seq: int
    audit_head: bytes  # b"" when the log was empty
    at: int  # when the check that made it ended, ms
    events: int = 0  # the last event then: a store_corrupt alarm after it voids the mark

    def __post_init__(self) -> None:
        ints = (self.documents, self.audit_seq, self.at, self.events, *self.open)
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in ints):
            raise StoreError("a store check mark holds whole numbers >= 0")
        if not isinstance(self.digest, bytes) or not isinstance(self.audit_head, bytes):
            raise StoreError("a store check mark's digest and audit head are bytes")
        if len(self.open) > MAX_OPEN:
            raise StoreError(f"a store check mark names at most {MAX_OPEN} open documents")

    def body(self) -> bytes:
        return codec.encode({"v": 1, "documents": self.documents, "digest": self.digest,
                             "open": list(self.open), "audit_seq": self.audit_seq,
                             "audit_head": self.audit_head, "at": self.at,
                             "events": self.events})

    @classmethod
    def from_body(cls, body: bytes) -> CheckMark:
        try:
            m = codec.decode(body, codec.SMALL_LIMITS)
            if not isinstance(m, dict) or m.get("v") != 1 or not isinstance(m.get("open"), list):
                raise StoreError("not a store check mark")
            return cls(documents=m["documents"], digest=m["digest"], open=tuple(m["open"]),
                       audit_seq=m["audit_seq"], audit_head=m["audit_head"], at=m["at"],
                       events=m["events"])
        except (BridgeError, KeyError, TypeError) as exc:
            raise StoreError(f"not a store check mark: {exc}") from exc


def sign_mark(me: PrivateIdentity, mark: CheckMark) -> tuple[bytes, bytes]:
    """The mark's bytes and the party's signature over them."""
    body = mark.body()
    return body, me.sign(TAG_STORE_CHECK, body)


def verified_mark(stored: tuple[bytes, bytes] | None,
                  keys: Sequence[PrivateIdentity]) -> CheckMark | None:
    """The stored mark if one of ``keys`` (the party's own, current and retired) signed it,
    else None."""
    if stored is None:
        return None
    body, sig = stored
    if not isinstance(body, bytes) or not isinstance(sig, bytes):
        return None
    if not any(k.public.verify(TAG_STORE_CHECK, body, sig) for k in keys):
        return None
    try:
        return CheckMark.from_body(body)
    except StoreError:
        return None


__all__ = ["MAX_OPEN", "TAG_STORE_CHECK", "CheckMark", "sign_mark", "verified_mark"]
