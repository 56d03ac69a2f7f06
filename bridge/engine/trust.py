"""What this bridge trusts, in one object: its own keys (the current one signs, retired ones
still open what was sealed to them), each pinned peer's current key, the earlier keys of each
peer with the rules that bound them (the last sequence number a retired key may sign, the time
from which a revoked key's signatures are void), and the keyring built from all of them.

Modelled on python-tuf's ``TrustedMetadataSet``: it takes bytes (a peer's key statement) and
answers questions ("may this key sign envelope 7?", "what does this rotation change?"); it does
no I/O. Loading the key files and writing them after a change is ``bridge.engine.keys``'s work;
this object only changes when it is told a verified change was committed (``apply``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bridge.core import keylife, times
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.errors import VerificationError
from bridge.engine.kinds import KIND_KEY_REVOCATION, KIND_KEY_ROTATION
from bridge.home.keystore import PeerKey

STATEMENT_SKEW_MS = 10 * 60 * 1000
"""How far ahead of our clock a peer's key statement may be dated (clocks differ a little;
a statement "from next year" is refused)."""


def refuse_ahead(what: str, at: int, now: int, *, skew_ms: int = times.MAX_SKEW_MS,
                 reason: str = "bad_time") -> None:
    """Refuse a time the peer signed that is too far ahead of our clock (PROTOCOL.md §3
    "Ranges"): stored, it would outrank every honest later time (acknowledgement order)."""
    problem = times.check_not_ahead(at, now, skew_ms)
    if problem is not None:
        raise VerificationError(f"{what} {problem}", reason=reason)


@dataclass(frozen=True, kw_only=True)
class KeyChange:
    """What one verified key statement of ``peer`` changes: ``key`` retired (with ``new``
    pinned in its place) or revoked (``revocation``)."""

    peer: str
    key: PeerKey
    new: PublicIdentity | None
    revocation: keylife.Revocation | None = None

    @property
    def statement(self) -> bytes:
        """The signed bytes that made the change (what the store records and replays)."""
        statement = self.key.rotation if self.new is not None else self.key.revocation
        assert statement is not None
        return statement


PeerKeys = Callable[[str, PublicIdentity], Sequence[PeerKey]]
"""Every key a peer has used (from its key files), given its name and pinned identity."""


def only_pinned(name: str, identity: PublicIdentity) -> Sequence[PeerKey]:
    """The key history of a bridge with no key files: the pinned key alone."""
    return [PeerKey(identity=identity, current=True)]


class TrustState:
    """Own keys, pinned peers, key rules and the keyring (see the module's docstring)."""

    def __init__(self, *, me: PrivateIdentity, retired: Sequence[PrivateIdentity] = (),
                 peers: Mapping[str, PublicIdentity], peer_keys: PeerKeys | None = None
                 ) -> None:
        self.me = me
        # Our retired keys still open envelopes the peer sealed before it learnt the new one.
        self.own: list[PrivateIdentity] = [me, *retired]
        self._peer_keys = peer_keys or only_pinned
        self.load_peers(peers)

    # ------------------------------------------------------------ loading

    def load_peers(self, peers: Mapping[str, PublicIdentity]) -> None:
        """Pinned keys and every earlier key of each peer: earlier keys verify what they signed
        before a rotation, and sign envelopes only up to the rotation's sequence number. Read
        at start and on reload only; a key statement updates one key (``_set_rule``), so its
        cost does not grow with the history."""
        self.peers: dict[str, PublicIdentity] = dict(peers)
        self._rules: dict[bytes, PeerKey] = {}
        # Shared with ``self.keyring`` (whose fields are these very dicts), so that
        # ``_set_rule`` updates it in place, in constant time.
        self._ring_ids: dict[bytes, PublicIdentity] = {}
        self._ring_revoked: dict[bytes, int] = {}
        self._ring_retired: dict[bytes, int] = {}
        self.keyring = Keyring(self._ring_ids, self._ring_revoked, self._ring_retired)
        self._rotations: dict[str, list[int]] = {}
        self._honoured: dict[str, list[int]] = {}  # revocations honoured outside the chain
        for name, ident in list(self.peers.items()):
            keys = self._peer_keys(name, ident)
            for key in keys:
                self._set_rule(key)
            self._rotations[name] = [k.rotated_at for k in keys if k.rotated_at is not None]
            current = [k for k in keys if k.current]
            if current:
                self.peers[name] = current[0].identity

    def _set_rule(self, key: PeerKey) -> None:
        kid = key.identity.key_id
        self._rules[kid] = key
        self._ring_ids[kid] = key.identity
        if key.revoked_since is not None:
            self._ring_revoked[kid] = key.revoked_since
        if key.retired_at is not None:
            self._ring_retired[kid] = key.retired_at

    # ------------------------------------------------------------ questions

    def is_pinned(self, party: str) -> bool:
        return party in self.peers

    def is_for_us(self, recipient_key: bytes) -> bool:
        """Was an envelope sealed to one of our keys (the current one or a retired one)?"""
        return any(recipient_key == k.key_id for k in self.own)

    def key_refusal(self, sender: PublicIdentity, seq: int) -> str | None:
        """Why ``sender``'s key may not sign envelope ``seq``, or None if it may."""
        rule = self._rules.get(sender.key_id)
        if rule is None or rule.current:
            return None
        if rule.valid_through_seq is not None and seq <= rule.valid_through_seq:
            return None
        if rule.revoked_since is not None:
            return f"key {sender.fingerprint} of {sender.party} was revoked"
        return f"key {sender.fingerprint} of {sender.party} was retired by a rotation"

    def peer_key_revoked(self, peer: str) -> bool:
        """Has ``peer`` revoked the key pinned for it (nothing may be sealed to it)?"""
        rule = self._rules.get(self.peers[peer].key_id)
        return rule is not None and rule.revoked_since is not None

    def receipt_keyring(self) -> Keyring:
        """Every key a receipt of ours may name: the peers' and our own, with revocations."""
        return Keyring.of([*self.keyring, *(k.public for k in self.own)],
                          revoked=self.keyring.revoked)

    def may_honour_revocation(self, peer: str, now: int) -> bool:
        """Outside the chain nothing else bounds revocations: a thief lowering ``since`` a
        millisecond at a time must not buy a transaction and a file write each."""
        recent = [t for t in self._honoured.get(peer, []) if t > now - keylife.DAY_MS]
        self._honoured[peer] = recent
        return len(recent) < keylife.MAX_ROTATIONS_PER_DAY

    # ------------------------------------------------------------ key statements

    def plan(self, peer: str, kind: str, payload: bytes, seq: int, now: int
             ) -> KeyChange | None:
        """Verify a peer's rotation or revocation and say what it changes (None: nothing).
        Changes nothing: the caller records it in its transaction and tells us to ``apply``
        it once that has committed (PROTOCOL.md §4.5)."""
        stype, key_id = keylife.statement_key_id(payload)
        rule = self._rules.get(key_id)
        if rule is None or rule.identity.party != peer:
            raise VerificationError("the statement is about a key we never pinned",
                                    reason="wrong_key")
        if kind == KIND_KEY_ROTATION and stype == keylife.ROTATION:
            return self._plan_rotation(peer, rule, payload, seq, now)
        if kind == KIND_KEY_REVOCATION and stype == keylife.REVOCATION:
            return self._plan_revocation(peer, rule, payload, seq, now)
        raise VerificationError("envelope kind and statement type differ",
                                reason="bad_key_statement")

    def _plan_rotation(self, peer: str, rule: PeerKey, payload: bytes, seq: int, now: int
                       ) -> KeyChange | None:
        rotation = keylife.parse_rotation(payload, rule.identity)
        refuse_ahead("the rotation", rotation.at, now, skew_ms=STATEMENT_SKEW_MS,
                     reason="bad_key_statement")
        if rotation.new.key_id == self.peers[peer].key_id:
            return None  # already applied
        if not rule.current:
            raise VerificationError("only the pinned key can be rotated", reason="wrong_key")
        recent = [t for t in self._rotations.get(peer, []) if t > now - keylife.DAY_MS]
        if len(recent) >= keylife.MAX_ROTATIONS_PER_DAY:
            raise VerificationError(
                f"more than {keylife.MAX_ROTATIONS_PER_DAY} rotations in 24 hours",
                reason="rotation_rate")
        retired = dataclasses.replace(rule, current=False, valid_through_seq=seq,
                                      rotation=payload, retired_at=rotation.at, rotated_at=now)
        return KeyChange(peer=peer, key=retired, new=rotation.new)

    @staticmethod
    def _plan_revocation(peer: str, rule: PeerKey, payload: bytes, seq: int, now: int
                         ) -> KeyChange | None:
        revocation = keylife.parse_revocation(payload, rule.identity)
        refuse_ahead("the revocation", revocation.at, now, skew_ms=STATEMENT_SKEW_MS,
                     reason="bad_key_statement")
        if rule.revoked_since is not None and rule.revoked_since <= revocation.since:
            return None  # the earliest since wins: this one changes nothing
        through = rule.valid_through_seq if rule.valid_through_seq is not None else seq
        revoked = dataclasses.replace(rule, current=False, valid_through_seq=through,
                                      revoked_since=revocation.since, revocation=payload)
        return KeyChange(peer=peer, key=revoked, new=None, revocation=revocation)

    # ------------------------------------------------------------ committed changes

    def apply(self, change: KeyChange) -> None:
        """A verified change of a peer's key, committed to the store: the rules (one key
        each), and the new pinned key of a rotation."""
        if change.new is not None:
            self._set_rule(PeerKey(identity=change.new, current=True))
            self.peers[change.peer] = change.new
            self._rotations.setdefault(change.peer, []).append(change.key.rotated_at or 0)
            del self._rotations[change.peer][:-keylife.MAX_ROTATIONS_PER_DAY]
        self._set_rule(change.key)

    def honoured(self, peer: str, now: int) -> None:
        """A revocation that came outside the chain was honoured (``may_honour_revocation``)."""
        self._honoured.setdefault(peer, []).append(now)

    def change_own(self, new: PrivateIdentity) -> None:
        """Our new key signs from now on; the old ones still open what was sealed to them."""
        self.me = new
        self.own = [new, *self.own]

    def identities(self) -> Iterable[tuple[str, str, PublicIdentity]]:
        """(role, party, identity) of every key in force: ours and each pinned peer's."""
        yield "self", self.me.party, self.me.public
        for party, ident in self.peers.items():
            yield "peer", party, ident
