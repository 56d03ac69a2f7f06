"""Keys over time: our own key's rotation and revocation, and the key statements of peers.

The trust itself (which key may sign what) is ``bridge.engine.trust.TrustState``; this part
does what changes it: it signs and queues our own statements, records a peer's verified
statement in the store, writes the key files once that has committed, replays a change that
was committed but not yet written when we stopped, and keeps the audit log's key events.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.core import audit, codec, envelope, keylife, times
from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity, PublicIdentity
from bridge.core.errors import InputError, PeerError, UsageError
from bridge.engine.context import Engine
from bridge.engine.kinds import KIND_KEY_REVOCATION, KIND_KEY_ROTATION
from bridge.engine.outbound import queue_envelope
from bridge.engine.trust import KeyChange
from bridge.home.keystore import KeyStore

log = logging.getLogger("bridge.exchange")

PEER_KEY_EVENT = "peer_key_statement"
iso = times.format_optional


def parse_since(text: object, *, created: int, now: int) -> int:
    """``since`` of a revocation (``keys revoke --since``): an ISO 8601 date (its start, UTC)
    or date-time with a UTC offset, within the key's lifetime: not after now (a date in the
    future would leave the stolen key trusted until then), and an earlier one than the key's
    creation is taken as its creation (PROTOCOL.md §4.5)."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise InputError("an ISO 8601 date or date-time with a UTC offset", field="since")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            if len(text) != 10:
                raise ValueError("no UTC offset")
            moment = moment.replace(tzinfo=UTC)
        since = times.from_datetime(moment)
    except (ValueError, OverflowError, OSError) as exc:
        raise InputError(f"not an ISO 8601 date or date-time with a UTC offset ({exc})",
                         field="since") from exc
    if since > now:
        raise InputError(f"must not be later than now ({iso(now)}): a key is revoked from a "
                         "time it may already have been stolen", field="since", code="bad_since")
    # Earlier than the key itself: every signature it ever made is void, which is what
    # "compromised since before it existed" can only mean ("err early", SECURITY.md).
    return max(since, created)


def rotation_suite(body: object, current: suites.SuiteId) -> suites.Suite:
    """The suite of the new keys (``keys rotate --suite``): the current one unless the body
    names another, never a lower one than the current (a downgrade would hand a quantum
    forger back the signatures suite 2 took away; peers refuse it too, PROTOCOL.md §4.5)."""
    now = suites.SUITES[current]
    if body is None or body == {}:
        return now
    if not isinstance(body, dict) or set(body) != {"suite"}:
        raise InputError("send {} or {\"suite\": 1 or 2}", field="$")
    number = body["suite"]
    wanted = suites.by_number(number) if type(number) is int else None
    if wanted is None:
        raise InputError(f"must be one of {sorted(s.number for s in suites.SUITES.values())}",
                         field="suite")
    if wanted.number < now.number:
        raise InputError(f"the key is in suite {now.number}: a rotation never moves down",
                         field="suite", code="suite_downgrade")
    return wanted


def revocation_reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if reason is None or reason == "":
        return "key compromised"
    # Not "or": a falsy non-text ({}, 0, false) must be refused, not taken as the default.
    if not isinstance(reason, str) or len(reason) > 2000:
        raise InputError("must be text of at most 2000 characters", field="reason")
    return reason


class Keys:
    def __init__(self, engine: Engine, *, keystore: KeyStore | None,
                 passphrase: bytes | None) -> None:
        self.e = engine
        self.keystore = keystore
        self.passphrase = passphrase

    # ------------------------------------------------------------ our own key

    def rotate_key(self, body: object = None) -> dict[str, Any]:
        """Planned rotation: new keys, announced to every peer by a statement both keys sign
        (in suite 2 the new keys are two: three signatures in all). ``{"suite": 2}`` moves a
        suite-1 party to suite 2."""
        e = self.e
        e.guard.writable()
        now = e.now()
        me = e.trust.me
        suite = rotation_suite(body, me.public.suite)
        if self.keystore is not None and self.keystore.own_rotations_since(
                me.party, now - keylife.DAY_MS) >= keylife.MAX_ROTATIONS_PER_DAY:
            # Peers accept no more than this (PROTOCOL.md §4.5): one more would be refused
            # and leave them trusting a key we no longer use.
            raise InputError(f"at most {keylife.MAX_ROTATIONS_PER_DAY} rotations in 24 hours",
                             field="$", code="rotation_rate")
        new = PrivateIdentity.generate(me.party, created=now, random_bytes=e.random_bytes,
                                       suite=suite)
        statement = keylife.make_rotation(me, new, at=now)
        self._change_own_key(KIND_KEY_ROTATION, statement, new,
                             {"type": "key_rotated", "old_key": me.key_id.hex()}, now)
        return {"old_fingerprint": me.public.fingerprint,
                "fingerprint": new.public.fingerprint, "peers": sorted(e.trust.peers),
                "suite": suite.number}

    def revoke_key(self, body: object) -> dict[str, Any]:
        """The current key is compromised: revoke it (signed by itself) and change to new keys,
        which peers must pin out of band (a thief could have signed a rotation too)."""
        e = self.e
        e.guard.writable()
        if not isinstance(body, dict):
            raise InputError("send {\"since\": ISO time, \"reason\": text}", field="$")
        now = e.now()
        me = e.trust.me
        since = now
        if body.get("since") is not None:
            since = parse_since(body["since"], created=me.public.created, now=now)
        reason = revocation_reason(body)
        # The new keys keep the suite: a revocation is no occasion to move down.
        new = PrivateIdentity.generate(me.party, created=now, random_bytes=e.random_bytes,
                                       suite=suites.SUITES[me.public.suite])
        statement = keylife.make_revocation(me, since=since, at=now, reason=reason)
        self._change_own_key(KIND_KEY_REVOCATION, statement, new,
                             {"type": "key_revoked", "old_key": me.key_id.hex(),
                              "since": iso(since)}, now)
        return {"revoked_fingerprint": me.public.fingerprint, "since": iso(since),
                "fingerprint": new.public.fingerprint, "peers": sorted(e.trust.peers)}

    def _change_own_key(self, kind: str, statement: bytes, new: PrivateIdentity,
                        event: dict[str, Any], now: int) -> None:
        if self.keystore is None:
            raise UsageError("this exchange has no key store")
        e = self.e
        old = e.trust.me
        self.keystore.stage_own(new, self.passphrase, statement)
        with e.store.transaction():
            # One statement to every peer, sealed by the key they trust now (the old one).
            for peer in e.trust.peers:
                queue_envelope(e, peer, e.store.outbound_state(peer), kind=kind,
                               payload=statement, sender=old, now=now)
            e.store.add_event(event["type"], {**event, "new_key": new.key_id.hex(),
                                              "fingerprint": new.public.fingerprint}, now)
            e.audit(audit.KEY, None, audit.key_body("changed", "self", new.public), now)
        # Committed: the statement goes out under the old key; everything after, under the new.
        self.keystore.install_own(old, new, self.passphrase)
        e.trust.change_own(new)
        e.notify()
        log.info("own key changed (%s): new fingerprint %s", kind, new.public.fingerprint)

    # ------------------------------------------------------------ peers' keys

    def reload_peers(self, peers: Mapping[str, PublicIdentity]) -> None:
        """After ``bridge peer add`` (e.g. a key pinned out of band after a revocation)."""
        self.e.trust.load_peers(peers)

    def statement_arrived(self, peer: str, kind: str, payload: bytes, seq: int, now: int
                          ) -> Callable[[], None] | None:
        """A key statement in envelope ``seq``, inside the transaction that takes it: what it
        changes is recorded; the returned step installs it once that has committed."""
        change = self.e.trust.plan(peer, kind, payload, seq, now)
        if change is None:
            return None
        self.record_change(change, now)
        return lambda: self.install(change)

    def record_change(self, change: KeyChange, now: int) -> None:
        """The store's record of a key change, in the caller's transaction: what ``install``
        replays at start if the files were not written (``finish_changes``)."""
        e = self.e
        peer, key = change.peer, change.key
        e.store.add_event(PEER_KEY_EVENT, {
            "peer": peer, "key": key.identity.key_id.hex(),
            "statement": base64.b64encode(change.statement).decode("ascii"),
            "valid_through_seq": key.valid_through_seq, "accepted_at": now}, now)
        if change.new is not None:
            e.store.add_event("peer_key_rotated", {
                "peer": peer, "old_fingerprint": key.identity.fingerprint,
                "fingerprint": change.new.fingerprint}, now)
            e.audit(audit.KEY, peer, audit.key_body("changed", "peer", change.new), now)
            return
        assert change.revocation is not None
        e.store.add_event("security_alarm", {
            "peer": peer, "reason": "peer_key_revoked",
            "detail": f"{peer} revoked key {key.identity.fingerprint} "
                      f"(since {iso(change.revocation.since)}): {change.revocation.reason}. "
                      "Pin its new key only after checking the fingerprint out of band."},
            now)
        e.audit(audit.KEY, peer, audit.key_body("revoked", "peer", key.identity), now)

    def install(self, change: KeyChange) -> None:
        """After the commit: the key files, then the trust state in memory."""
        assert self.keystore is not None
        if change.new is not None:
            self.keystore.rotate_peer(change.peer, change.key, change.new)
        else:
            self.keystore.revoke_peer(change.peer, change.key)
        self.e.trust.apply(change)

    def finish_changes(self) -> None:
        """A peer's key change committed but not yet in the key files when we stopped: apply
        it now. Only the last change of each peer can be missing (each is installed right
        after its own commit, on this one thread)."""
        if self.keystore is None:
            return
        last: dict[str, dict[str, Any]] = {}
        for data in self.e.store.event_data(PEER_KEY_EVENT):
            last[data["peer"]] = data
        for peer, data in last.items():
            if not self.e.trust.is_pinned(peer):
                continue
            payload = base64.b64decode(data["statement"])
            kind = (KIND_KEY_ROTATION if keylife.statement_type(payload) == keylife.ROTATION
                    else KIND_KEY_REVOCATION)
            try:
                change = self.e.trust.plan(peer, kind, payload, data["valid_through_seq"],
                                           data["accepted_at"])
            except PeerError:
                continue  # already superseded (e.g. the rotated key is no longer pinned)
            if change is not None:
                self.install(change)
                log.info("finished %s's key change recorded before a stop", peer)

    def honour_revocation(self, peer: str, opened: envelope.OpenedEnvelope, now: int) -> None:
        """A revocation is safe to honour whoever made it and however it came (PROTOCOL.md
        §4.5): one from an already revoked key, or one that cannot take its place in the
        chain (a thief's envelope took that place first), still lowers ``since``."""
        e = self.e
        if opened.header.kind != KIND_KEY_REVOCATION or self.keystore is None:
            return
        if not e.trust.may_honour_revocation(peer, now):
            return
        try:
            # A key not yet retired or revoked signs nothing after what the chain holds now.
            change = e.trust.plan(peer, KIND_KEY_REVOCATION, opened.payload,
                                  e.store.inbound_state(peer).last_seq, now)
        except PeerError:
            return
        if change is None:
            return
        e.trust.honoured(peer, now)
        with e.store.transaction():
            self.record_change(change, now)
        self.install(change)
        e.notify()

    # ------------------------------------------------------------ the audit log's key events

    def record_keys(self) -> None:
        """Key events: our own key and each pinned peer's when first used or changed, and a
        peer no longer pinned, so the log shows which keys were in force when."""
        e = self.e
        known: dict[tuple[str, str], bytes] = {}
        for _, raw in e.store.audit_bodies(audit.KEY):
            b = codec.decode(raw, audit.BODY_LIMITS)
            if b["event"] == "removed":
                known.pop((b["role"], b["party"]), None)
            else:
                known[(b["role"], b["party"])] = b["key_id"]
        current = {(role, party): ident for role, party, ident in e.trust.identities()}
        changes = [("added" if key not in known else "changed", key, ident)
                   for key, ident in current.items() if known.get(key) != ident.key_id]
        gone = [key for key in known if key not in current]
        if not changes and not gone:
            return
        now = e.now()
        with e.store.transaction():
            for event, (role, party), ident in changes:
                e.audit(audit.KEY, party if role == "peer" else None,
                        audit.key_body(event, role, ident), now)
            for role, party in gone:
                e.audit(audit.KEY, party if role == "peer" else None,
                        {"event": "removed", "role": role, "party": party,
                         "key_id": known[(role, party)]}, now)
