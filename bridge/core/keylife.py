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
could also sign a rotation onto a key of their own. Its ``since`` lies within the key's
lifetime: not before the key was created, not after the statement was made (``at``); a
revocation "from 2099" would leave a stolen key trusted until then.

**Keys over time** (``build_keyring``): a verifier trusts the keys it was given (pinned out of
band), a retired key only up to the rotation that retired it, and a revoked key only before the
earliest ``since`` of any valid revocation of it, whatever the order the statements come in.
A **key history file** carries a party's identities and statements for a verifier.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bridge.core import codec
from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    TAG_KEY_REVOCATION,
    TAG_KEY_ROTATION,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    iso_time,
    signed_message,
)
from bridge.core.errors import PeerError, UsageError, VerificationError

ROTATION = "bridge.key-rotation"
REVOCATION = "bridge.key-revocation"
_ROTATION_KEYS = frozenset({"v", "type", "party", "old_key", "new_statement", "new_signature",
                            "at"})
_REVOCATION_KEYS = frozenset({"v", "type", "party", "key", "since", "at", "reason"})
MAX_ROTATIONS_PER_DAY = 8
"""Rotations of one party's keys a bridge makes, or accepts from a peer, in any 24 hours
(PROTOCOL.md §4.5): a planned rotation is yearly or so, and each one grows the key history
that every verifier carries."""
DAY_MS = 86_400_000
MAX_TIME = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: no time in a key statement is later (PROTOCOL.md §4.5), so every
one is a valid date and fits a 64-bit signed integer wherever it is stored."""
HISTORY = "bridge_key_history"


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
    check_since(key.public, since=since, at=at)
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
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIME


def check_since(key: PublicIdentity, *, since: int, at: int) -> None:
    """``since`` lies within ``key``'s lifetime as the statement knows it: from the key's
    creation to the statement's own time. Raises ``VerificationError`` (``bad_since``)."""
    if not key.created <= since <= at:
        raise VerificationError(
            f"a revocation's since ({iso_time(since)}) must lie between the key's creation "
            f"({iso_time(key.created)}) and the revocation's own time ({iso_time(at)})",
            reason="bad_since")


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
    if v["at"] < old.created:
        raise VerificationError("the rotation is dated before the key it retires was created",
                                reason="bad_key_statement")
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
    if suites.SUITES[new.suite].number < suites.SUITES[old.suite].number:
        # A rotation moves up (suite 1 to 2), never down: a peer pinned in suite 2 must never
        # be talked back into signatures a quantum computer can forge (PROTOCOL.md §4.5).
        raise VerificationError(f"the rotation would move from suite "
                                f"{suites.SUITES[old.suite].number} down to "
                                f"{suites.SUITES[new.suite].number}", reason="suite_downgrade")
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
    check_since(key, since=v["since"], at=v["at"])
    return Revocation(party=key.party, key=key.key_id, since=v["since"], at=v["at"],
                      reason=v["reason"], data=data)


def _outer_r(data: bytes) -> bytes:
    value = codec.decode(data, codec.SMALL_LIMITS)
    if not isinstance(value, dict) or not isinstance(value.get("r"), bytes):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    r: bytes = value["r"]
    return r


def statement_key_id(data: bytes) -> tuple[str, bytes]:
    """(type, key id it is about) of a key statement, without verifying it: to find which
    pinned key to verify it with."""
    inner = codec.decode(_outer_r(data), codec.SMALL_LIMITS)
    if not isinstance(inner, dict):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    if inner.get("type") == ROTATION and isinstance(inner.get("old_key"), bytes):
        return ROTATION, inner["old_key"]
    if inner.get("type") == REVOCATION and isinstance(inner.get("key"), bytes):
        return REVOCATION, inner["key"]
    raise VerificationError("not a key statement", reason="bad_key_statement")


def statement_time(data: bytes) -> int:
    """The ``at`` of a key statement, unverified (for counting one's own statements)."""
    inner = codec.decode(_outer_r(data), codec.SMALL_LIMITS)
    at = inner.get("at") if isinstance(inner, dict) else None
    if not _int(at):
        raise VerificationError("not a key statement", reason="bad_key_statement")
    assert isinstance(at, int)
    return at


def statement_type(data: bytes) -> str | None:
    """ROTATION or REVOCATION for the bytes of a key statement, None for anything else."""
    try:
        return statement_key_id(data)[0]
    except PeerError:  # DecodeError and VerificationError alike: not a statement
        return None


def is_revocation_file(data: bytes) -> bool:
    return statement_type(data) == REVOCATION


# ---------------------------------------------------------------- keys over time


@dataclass(frozen=True, kw_only=True)
class History:
    """A party's identities and key statements, as a key history file carries them."""

    identities: tuple[PublicIdentity, ...] = ()
    statements: tuple[bytes, ...] = ()

    def dumps(self) -> str:
        """The key history file (PROTOCOL.md §4.6): UTF-8 JSON."""
        return json.dumps({
            HISTORY: 1,
            "identities": [i.to_json() for i in self.identities],
            "statements": [base64.b64encode(s).decode("ascii") for s in self.statements],
        }, indent=2) + "\n"

    @classmethod
    def loads(cls, text: bytes, *, source: str) -> History:
        """Parse a key history file. Only its shape is checked here: every identity is
        verified by ``PublicIdentity.loads``, every statement by ``build_keyring``."""
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise VerificationError(f"{source}: not JSON: {exc}", reason="bad_history") from exc
        if (not isinstance(doc, dict) or set(doc) != {HISTORY, "identities", "statements"}
                or type(doc[HISTORY]) is not int or doc[HISTORY] != 1
                or not isinstance(doc["identities"], list)
                or not isinstance(doc["statements"], list)
                or not all(isinstance(x, str) for x in doc["statements"])):
            raise VerificationError(f"{source}: not a version 1 Bridge key history file",
                                    reason="bad_history")
        idents = tuple(PublicIdentity.loads(json.dumps(i), source=f"{source}: identity {n}")
                       for n, i in enumerate(doc["identities"]))
        try:
            statements = tuple(base64.b64decode(x, validate=True) for x in doc["statements"])
        except ValueError as exc:
            raise VerificationError(f"{source}: a statement is not base64",
                                    reason="bad_history") from exc
        return cls(identities=idents, statements=statements)


def is_history_file(data: bytes) -> bool:
    """A JSON object naming the key history format (anything else is for another loader)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and HISTORY in doc


def build_keyring(anchors: Iterable[PublicIdentity], history: Iterable[PublicIdentity] = (),
                  statements: Sequence[bytes] = (), *, strict: bool = True) -> Keyring:
    """The keyring a verifier may use, from keys it trusts and statements about them.

    ``anchors`` are trusted as given (pinned out of band). A key in ``history`` is trusted only
    through a valid rotation onto a trusted key. A trusted key with a valid rotation is trusted
    only for what it signed up to that rotation's ``at`` (the earliest): a retired key stolen
    later can sign a date, but not make it true.
    Revocations apply to trusted keys, the earliest ``since`` winning. Every statement must
    verify (``VerificationError`` otherwise); one naming a key not given is ignored.

    With ``strict``, two keys of one party both still in force (neither retired nor revoked)
    are refused (``UsageError``): without the statement between them, the older could sign
    anything dated later and verify.
    """
    trusted = {i.key_id: i for i in anchors}
    known = {i.key_id: i for i in history} | trusted
    rotations: list[Rotation] = []
    revocations: list[bytes] = []
    for data in statements:
        kind, key_id = statement_key_id(data)
        if kind == REVOCATION:
            revocations.append(data)
        elif key_id in known:
            rotations.append(parse_rotation(data, known[key_id]))
    retired: dict[bytes, int] = {}
    # A rotation vouches for its old key once its new key is trusted: follow the chains back
    # from the anchors, each rotation once (linear in the statements, whatever their order).
    onto: dict[bytes, list[Rotation]] = {}
    for r in rotations:
        onto.setdefault(r.new.key_id, []).append(r)
    todo = list(trusted)
    while todo:
        for r in onto.pop(todo.pop(), []):
            if r.old_key not in trusted:
                trusted[r.old_key] = known[r.old_key]
                todo.append(r.old_key)
    # Any valid rotation of a trusted key retires it, onto a trusted key or not: signed by the
    # key itself, it can only end trust (as a revocation can), never add any.
    for r in rotations:
        if r.old_key in trusted:
            retired[r.old_key] = min(r.at, retired.get(r.old_key, r.at))
    revoked: dict[bytes, int] = {}
    for data in revocations:
        _, key_id = statement_key_id(data)
        if key_id in trusted:
            since = parse_revocation(data, trusted[key_id]).since
            revoked[key_id] = min(since, revoked.get(key_id, since))
    if strict:
        _one_key_in_force(trusted.values(), retired, revoked)
    return Keyring.of(trusted.values(), revoked, retired)


def _one_key_in_force(keys: Iterable[PublicIdentity], retired: dict[bytes, int],
                      revoked: dict[bytes, int]) -> None:
    open_keys: dict[str, list[PublicIdentity]] = {}
    for ident in keys:
        if ident.key_id not in retired and ident.key_id not in revoked:
            open_keys.setdefault(ident.party, []).append(ident)
    for party, idents in sorted(open_keys.items()):
        if len(idents) > 1:
            fps = ", ".join(i.fingerprint for i in idents)
            raise UsageError(
                f"{len(idents)} keys of {party} are given ({fps}) with no rotation or "
                "revocation ending all but one: an old key could sign anything dated later "
                f"and verify. Give the key history of {party} too (bridge keys history -o "
                "FILE)")


__all__ = ["DAY_MS", "MAX_ROTATIONS_PER_DAY", "MAX_TIME", "REVOCATION", "ROTATION",
           "TAG_KEY_REVOCATION", "History", "Revocation", "Rotation", "build_keyring",
           "check_since", "is_history_file", "is_revocation_file", "make_revocation",
           "make_rotation", "parse_revocation", "parse_rotation", "signed_message",
           "statement_key_id", "statement_time", "statement_type"]
