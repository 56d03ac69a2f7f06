"""The key lifecycle: rotation and revocation statements (pure: no I/O).

**Rotation** (planned): the party makes new keys and a statement naming its old key id and its
new identity statement, signed by BOTH the old key and the new key with the tag
``bridge/v1/key-rotation``. The old signature proves the change comes from the holder of the
pinned key; the new one proves the new key's holder agrees (no one can rotate a party onto a key
it does not hold). A peer that verifies it pins the new key at once and keeps the old one to
verify what came before.

**Revocation** (compromise): a statement naming a key and the time ``since`` which it must no
longer be trusted, signed by that key itself with the tag ``bridge/v1/key-revocation``. Only a
holder of the key can make it, and the only thing it can do is stop trust in that key, so it is
safe to honour even if the attacker made it. It names no successor: a key after a compromise is
pinned only out of band (``bridge peer add --replace``), because whoever stole the old key
could also sign a rotation onto a key of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge import codec
from bridge.errors import PeerError, VerificationError
from bridge.identity import (
    TAG_KEY_REVOCATION,
    TAG_KEY_ROTATION,
    PrivateIdentity,
    PublicIdentity,
    signed_message,
)

ROTATION = "bridge.key-rotation"
REVOCATION = "bridge.key-revocation"
_ROTATION_KEYS = frozenset({"v", "type", "party", "old_key", "new_statement", "new_signature",
                            "at"})
_REVOCATION_KEYS = frozenset({"v", "type", "party", "key", "since", "at", "reason"})


@dataclass(frozen=True, kw_only=True)
class Rotation:
    party: str
    old_key: bytes
    new: PublicIdentity
    at: int
    data: bytes = field(repr=False)  # the whole signed wire form


@dataclass(frozen=True, kw_only=True)
class Revocation:
    party: str
    key: bytes
    since: int
    at: int
    reason: str
    data: bytes = field(repr=False)


def make_rotation(old: PrivateIdentity, new: PrivateIdentity, *, at: int) -> bytes:
    if old.party != new.party:
        raise ValueError("a rotation keeps the party")
    statement = codec.encode({
        "v": 1, "type": ROTATION, "party": old.party, "old_key": old.key_id,
        "new_statement": new.public.statement, "new_signature": new.public.signature, "at": at,
    })
    return codec.encode({"r": statement, "old_sig": old.sign(TAG_KEY_ROTATION, statement),
                         "new_sig": new.sign(TAG_KEY_ROTATION, statement)})


def make_revocation(key: PrivateIdentity, *, since: int, at: int, reason: str) -> bytes:
    statement = codec.encode({"v": 1, "type": REVOCATION, "party": key.party, "key": key.key_id,
                              "since": since, "at": at, "reason": reason})
    return codec.encode({"r": statement, "sig": key.sign(TAG_KEY_REVOCATION, statement)})


def _outer(data: bytes, keys: frozenset[str]) -> dict[str, bytes]:
    value = codec.decode(data, codec.SMALL_LIMITS)
    if (not isinstance(value, dict) or set(value) != keys
            or not all(isinstance(v, bytes) for v in value.values())):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    return value


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_rotation(data: bytes, old: PublicIdentity) -> Rotation:
    """Verify a rotation of ``old`` (the key now pinned): both signatures and the new identity.

    1. decode strictly; 2. the statement names ``old``'s party and key id;
    3. the old key's signature holds; 4. the new identity statement is valid and self-signed,
    for the same party; 5. the new key's signature holds.
    """
    outer = _outer(data, frozenset({"r", "old_sig", "new_sig"}))
    v = codec.decode(outer["r"], codec.SMALL_LIMITS)
    if not isinstance(v, dict) or set(v) != _ROTATION_KEYS or v["v"] != 1 \
            or v["type"] != ROTATION or not _int(v["at"]):
        raise VerificationError("not a key rotation statement", reason="bad_key_statement")
    if v["party"] != old.party or v["old_key"] != old.key_id:
        raise VerificationError("the rotation is not of the pinned key", reason="wrong_key")
    if not old.verify(TAG_KEY_ROTATION, outer["r"], outer["old_sig"]):
        raise VerificationError("the old key's signature on the rotation does not verify",
                                reason="bad_signature")
    if not isinstance(v["new_statement"], bytes) or not isinstance(v["new_signature"], bytes):
        raise VerificationError("the rotation's new identity is malformed",
                                reason="bad_key_statement")
    new = PublicIdentity.from_statement(v["new_statement"], v["new_signature"])
    if new.party != old.party or new.key_id == old.key_id:
        raise VerificationError("the new identity is for another party or the same key",
                                reason="wrong_key")
    if not new.verify(TAG_KEY_ROTATION, outer["r"], outer["new_sig"]):
        raise VerificationError("the new key's signature on the rotation does not verify",
                                reason="bad_signature")
    return Rotation(party=old.party, old_key=old.key_id, new=new, at=v["at"], data=data)


def parse_revocation(data: bytes, key: PublicIdentity) -> Revocation:
    """Verify a revocation of ``key``, signed by ``key`` itself."""
    outer = _outer(data, frozenset({"r", "sig"}))
    v = codec.decode(outer["r"], codec.SMALL_LIMITS)
    if not isinstance(v, dict) or set(v) != _REVOCATION_KEYS or v["v"] != 1 \
            or v["type"] != REVOCATION or not _int(v["since"]) or not _int(v["at"]) \
            or not isinstance(v["reason"], str) or len(v["reason"]) > 2000:
        raise VerificationError("not a key revocation statement", reason="bad_key_statement")
    if v["party"] != key.party or v["key"] != key.key_id:
        raise VerificationError("the revocation is of another key", reason="wrong_key")
    if not key.verify(TAG_KEY_REVOCATION, outer["r"], outer["sig"]):
        raise VerificationError("the revocation's signature does not verify",
                                reason="bad_signature")
    return Revocation(party=key.party, key=key.key_id, since=v["since"], at=v["at"],
                      reason=v["reason"], data=data)


def statement_key_id(data: bytes) -> tuple[str, bytes]:
    """(type, key id it is about) of a key statement, without verifying it: to find which
    pinned key to verify it with."""
    value = codec.decode(data, codec.SMALL_LIMITS)
    if not isinstance(value, dict) or not isinstance(value.get("r"), bytes):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    inner = codec.decode(value["r"], codec.SMALL_LIMITS)
    if not isinstance(inner, dict):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    if inner.get("type") == ROTATION and isinstance(inner.get("old_key"), bytes):
        return ROTATION, inner["old_key"]
    if inner.get("type") == REVOCATION and isinstance(inner.get("key"), bytes):
        return REVOCATION, inner["key"]
    raise VerificationError("not a key statement", reason="bad_key_statement")


def is_revocation_file(data: bytes) -> bool:
    try:
        return statement_key_id(data)[0] == REVOCATION
    except PeerError:  # DecodeError and VerificationError alike: not a statement
        return False


__all__ = ["REVOCATION", "ROTATION", "TAG_KEY_REVOCATION", "Revocation", "Rotation",
           "is_revocation_file", "make_revocation", "make_rotation", "parse_revocation",
           "parse_rotation", "signed_message", "statement_key_id"]
