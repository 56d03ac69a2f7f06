"""The exchange: what a bridge does with documents, envelopes and acknowledgements.

Synchronous, and called from the daemon's one database thread, so each operation is one
transaction against the store and operations never interleave. The HTTP and socket adapters
(``peer.py``, ``api.py``) only translate between the wire and these methods.

Outbound, a document is signed, split into chunks, sealed into envelopes with the next
sequence numbers and chain hashes, and committed to the outbox in ONE transaction: a 202 means
all of it is on disk, and the delivery loop only ever resends those same bytes (a retry keeps
its message id and hash, so the peer recognises it as a duplicate).

Inbound, an envelope is authenticated, classified by the link state machine, and its content
applied in the same transaction that records it in the inbox together with the signed transport
receipt; a duplicate gets that stored receipt back.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from bridge.core import answers as transport
from bridge.core import (
    audit,
    chunks,
    codec,
    deadlines,
    documents,
    envelope,
    keylife,
    lifecycle,
    link,
    receipts,
    times,
)
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.documents import AckItem, Item, SignedDocument
from bridge.core.errors import (
    BridgeError,
    DecodeError,
    InputError,
    OpaqueCryptoError,
    PeerError,
    StoreCorrupt,
    StoreUnavailable,
    UsageError,
    VerificationError,
)
from bridge.engine.limits import RefusalGate
from bridge.engine.metrics import Metrics
from bridge.engine.store_check import MAX_FAULTS, StoreFault, check_declared_entry
from bridge.home.folder import Config
from bridge.home.keystore import KeyStore, PeerKey
from bridge.records.categories import validate_submission
from bridge.records.schema import validate
from bridge.reports.build import build_reconciliation
from bridge.reports.render.json import to_json as report_json
from bridge.reports.rules import REASON_STATUSES
from bridge.store.sqlite.store import DocumentRow, OutboxRow, Store

log = logging.getLogger("bridge.exchange")

KIND_CHUNK = "chunk"
KIND_KEY_ROTATION = "key-rotation"
KIND_KEY_REVOCATION = "key-revocation"
Statement = tuple[str, str | None, str | None]  # an item's (status, reason, evidence)
_COMPARE_PAGE = 10_000  # stored items compared per page when a submission is retried
MAX_LISTED_PROBLEMS = 100  # bad items named in one answer (all are counted)
FAULT_STORE = "store_unavailable"
PAYLOAD_LIMITS = codec.Limits(max_bytes=256 * 1024 * 1024, max_items=1 << 20)
PEER_KEY_EVENT = "peer_key_statement"
STATEMENT_SKEW_MS = 10 * 60 * 1000
"""How far ahead of our clock a peer's key statement may be dated (clocks differ a little;
a statement "from next year" is refused)."""
UNAUTHENTICATED_SOURCE = "unauthenticated"
"""The source of coalesced refusals of envelopes whose sender is not a pinned peer."""


# The one time formatter (bridge.core.times): total, so no stored time can break a read.
iso = times.format_optional


def _shown(value: Any) -> Any:
    """Free-form data as JSON can hold it. Intake refuses anything else (json_data_problem),
    but an entry stored before that check may hold a bin: shown as hex, never a 500."""
    if isinstance(value, Mapping):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value.hex() if isinstance(value, bytes) else value


def _not_ahead(what: str, at: int, now: int, *, skew_ms: int = times.MAX_SKEW_MS,
               reason: str = "bad_time") -> None:
    """Refuse a time the peer signed that is too far ahead of our clock (PROTOCOL.md §3
    "Ranges"): stored, it would outrank every honest later time (acknowledgement order)."""
    problem = times.check_not_ahead(at, now, skew_ms)
    if problem is not None:
        raise VerificationError(f"{what} {problem}", reason=reason)


Parsed = tuple[envelope.EnvelopeHeader, bytes, bytes, bytes]


def decode_envelope(data: bytes) -> Parsed | PeerError:
    """The envelope split and its header decoded, or why not. Pure and bounded (PROTOCOL.md
    §5.1): the peer endpoint runs it beside the database thread, never on it."""
    try:
        return envelope.parse(data, limits=PAYLOAD_LIMITS)
    except PeerError as exc:
        return exc


@dataclass(frozen=True, kw_only=True)
class _KeyChange:
    """What one verified key statement of ``peer`` changes: ``key`` retired (with ``new``
    pinned in its place) or revoked (``revocation``)."""

    peer: str
    key: PeerKey
    new: PublicIdentity | None
    revocation: keylife.Revocation | None = None


def _parse_since(text: object, *, created: int, now: int) -> int:
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


@dataclass(frozen=True, kw_only=True)
class PeerAnswer:
    """What the peer endpoint sends back: an HTTP status and a signed transport answer."""

    status: int
    body: bytes
    outcome: str  # accepted | duplicate | refused | rejected, for metrics and logs


@dataclass(frozen=True, kw_only=True)
class DeliveryOutcome:
    # delivered | refused: the peer decided (progress); rewound: it asks for an earlier
    # envelope; unavailable: it could not decide now; failed: no valid answer.
    state: str
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class _KindHandler:
    """What one envelope kind does on arrival: ``parse`` its payload before the transaction
    (a ``PeerError`` refuses the content) and ``apply`` it inside; what ``apply`` returns is
    run after the commit (state outside the database changes only once the store has it)."""

    parse: Callable[[bytes], chunks.ReceivedChunk | None]
    apply: Callable[[str, bytes, chunks.ReceivedChunk | None, int, int],
                    Callable[[], None] | None]


def _the(chunk: chunks.ReceivedChunk | None) -> chunks.ReceivedChunk:
    assert chunk is not None  # the chunk kind's parse returns one or raises
    return chunk


class Exchange:
    def __init__(self, *, store: Store, identity: PrivateIdentity,
                 peers: Mapping[str, PublicIdentity], config: Config,
                 clock: Callable[[], int] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 notify: Callable[[], None] = lambda: None,
                 metrics: Metrics | None = None,
                 keystore: KeyStore | None = None,
                 passphrase: bytes | None = None,
                 retired: Sequence[PrivateIdentity] = ()) -> None:
        self.store = store
        self.me = identity
        # Our retired keys still open envelopes the peer sealed before it learnt the new one.
        self.own: list[PrivateIdentity] = [identity, *retired]
        self.keystore = keystore
        self.passphrase = passphrase
        self.peers = dict(peers)
        self._key_rules: dict[bytes, PeerKey] = {}
        self._load_peer_keys()
        self.config = config
        self.now: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        self.random_bytes = random_bytes
        self.notify = notify
        self.metrics = metrics or Metrics()
        # Which refusals get a row: a flood must not grow the store without bound (limits.py).
        self.refusal_gate = RefusalGate(per_minute=config.limits.refusal_records_per_minute,
                                        metrics=self.metrics)
        self.chunk = chunks.chunk_size(config.delivery.chunk_items)
        # item id -> (index, leaf hash) of our own documents. Immutable once stored, so it can
        # be cached: acknowledgements of one document arrive in many chunks.
        self._index_cache: dict[int, dict[str, tuple[int, bytes]]] = {}
        self._finish_peer_key_changes()
        self._kinds = self._kind_handlers()
        # What the store check (at start, or a read) found not to be what was signed. While
        # not empty the store is read-only and those documents are not served (SECURITY.md).
        self.store_faults: list[StoreFault] = []
        self._alarms_due: list[StoreFault] = []
        self._record_keys()

    # ============================================================ keys

    def _load_peer_keys(self) -> None:
        """Pinned keys and every earlier key of each peer: earlier keys verify what they signed
        before a rotation, and sign envelopes only up to the rotation's sequence number. Read
        from the files at start and on reload only; a key statement updates one key
        (``_set_rule``), so its cost does not grow with the history."""
        self._key_rules = {}
        # Shared with ``self.keyring`` (whose fields are these very dicts), so that
        # ``_set_rule`` updates it in place, in constant time.
        self._ring_ids: dict[bytes, PublicIdentity] = {}
        self._ring_revoked: dict[bytes, int] = {}
        self._ring_retired: dict[bytes, int] = {}
        self.keyring = Keyring(self._ring_ids, self._ring_revoked, self._ring_retired)
        self._rotations: dict[str, list[int]] = {}
        self._honoured: dict[str, list[int]] = {}  # revocations honoured outside the chain
        for name, ident in self.peers.items():
            keys = (self.keystore.peer_keys(name) if self.keystore is not None
                    else [PeerKey(identity=ident, current=True)])
            for key in keys:
                self._set_rule(key)
            self._rotations[name] = [k.rotated_at for k in keys if k.rotated_at is not None]
            current = [k for k in keys if k.current]
            if current:
                self.peers[name] = current[0].identity

    def _set_rule(self, key: PeerKey) -> None:
        kid = key.identity.key_id
        self._key_rules[kid] = key
        self._ring_ids[kid] = key.identity
        if key.revoked_since is not None:
            self._ring_revoked[kid] = key.revoked_since
        if key.retired_at is not None:
            self._ring_retired[kid] = key.retired_at

    def _key_allows(self, sender: PublicIdentity, seq: int) -> str | None:
        """Why ``sender``'s key may not sign envelope ``seq``, or None if it may."""
        rule = self._key_rules.get(sender.key_id)
        if rule is None or rule.current:
            return None
        if rule.valid_through_seq is not None and seq <= rule.valid_through_seq:
            return None
        if rule.revoked_since is not None:
            return f"key {sender.fingerprint} of {sender.party} was revoked"
        return f"key {sender.fingerprint} of {sender.party} was retired by a rotation"

    def _enqueue_statement(self, kind: str, payload: bytes, sender: PrivateIdentity,
                           now: int) -> None:
        """One key statement to every peer, sealed by ``sender`` (the key they trust now)."""
        for peer, recipient in self.peers.items():
            state = self.store.outbound_state(peer)
            seq, prev = state.next()
            env = envelope.seal(sender, recipient, message_id=self.random_bytes(16), seq=seq,
                                prev=prev, sent_at=now, kind=kind, payload=payload)
            self.store.insert_outbox(peer=peer, seq=seq, msg_id=env.header.message_id,
                                     digest=env.digest, envelope=env.data, kind=kind, doc=None,
                                     first=None, n=None, now=now)
            self._audit(audit.ENVELOPE_QUEUED, peer, audit.envelope_body(
                env.header, codec.encode(env.header.to_map()), env.digest, doc=None,
                first=None, n=None), now)

    def _change_own_key(self, kind: str, statement: bytes, new: PrivateIdentity,
                        event: dict[str, Any], now: int) -> None:
        if self.keystore is None:
            raise UsageError("this exchange has no key store")
        old = self.me
        self.keystore.stage_own(new, self.passphrase, statement)
        with self.store.transaction():
            self._enqueue_statement(kind, statement, old, now)
            self.store.add_event(event["type"], {**event, "new_key": new.key_id.hex(),
                                                 "fingerprint": new.public.fingerprint}, now)
            self._audit(audit.KEY, None, audit.key_body("changed", "self", new.public), now)
        # Committed: the statement goes out under the old key; everything after, under the new.
        self.keystore.install_own(old, new, self.passphrase)
        self.me = new
        self.own = [new, *self.own]
        self.notify()
        log.info("own key changed (%s): new fingerprint %s", kind, new.public.fingerprint)

    def rotate_key(self) -> dict[str, Any]:
        """Planned rotation: new keys, announced to every peer by a statement both keys sign."""
        self._writable()
        now = self.now()
        if self.keystore is not None and self.keystore.own_rotations_since(
                self.me.party, now - keylife.DAY_MS) >= keylife.MAX_ROTATIONS_PER_DAY:
            # Peers accept no more than this (PROTOCOL.md §4.5): one more would be refused
            # and leave them trusting a key we no longer use.
            raise InputError(f"at most {keylife.MAX_ROTATIONS_PER_DAY} rotations in 24 hours",
                             field="$", code="rotation_rate")
        new = PrivateIdentity.generate(self.me.party, created=now,
                                       random_bytes=self.random_bytes)
        statement = keylife.make_rotation(self.me, new, at=now)
        old = self.me.public
        self._change_own_key(KIND_KEY_ROTATION, statement, new,
                             {"type": "key_rotated", "old_key": old.key_id.hex()}, now)
        return {"old_fingerprint": old.fingerprint, "fingerprint": new.public.fingerprint,
                "peers": sorted(self.peers)}

    def revoke_key(self, body: object) -> dict[str, Any]:
        """The current key is compromised: revoke it (signed by itself) and change to new keys,
        which peers must pin out of band (a thief could have signed a rotation too)."""
        self._writable()
        if not isinstance(body, dict):
            raise InputError("send {\"since\": ISO time, \"reason\": text}", field="$")
        now = self.now()
        since = now
        if body.get("since") is not None:
            since = _parse_since(body["since"], created=self.me.public.created, now=now)
        reason = body.get("reason")
        if reason is None or reason == "":
            reason = "key compromised"
        # Not "or": a falsy non-text ({}, 0, false) must be refused, not taken as the default.
        if not isinstance(reason, str) or len(reason) > 2000:
            raise InputError("must be text of at most 2000 characters", field="reason")
        new = PrivateIdentity.generate(self.me.party, created=now,
                                       random_bytes=self.random_bytes)
        statement = keylife.make_revocation(self.me, since=since, at=now, reason=reason)
        old = self.me.public
        self._change_own_key(KIND_KEY_REVOCATION, statement, new,
                             {"type": "key_revoked", "old_key": old.key_id.hex(),
                              "since": iso(since)}, now)
        return {"revoked_fingerprint": old.fingerprint, "since": iso(since),
                "fingerprint": new.public.fingerprint, "peers": sorted(self.peers)}

    def _plan_key_statement(self, peer: str, kind: str, payload: bytes, seq: int,
                            now: int) -> _KeyChange | None:
        """Verify a peer's rotation or revocation and say what it changes (None: nothing).
        Writes nothing: the caller records it in its transaction, and ``_install`` changes
        the key files only once that has committed (PROTOCOL.md §4.5)."""
        stype, key_id = keylife.statement_key_id(payload)
        rule = self._key_rules.get(key_id)
        if rule is None or rule.identity.party != peer:
            raise VerificationError("the statement is about a key we never pinned",
                                    reason="wrong_key")
        if kind == KIND_KEY_ROTATION and stype == keylife.ROTATION:
            rotation = keylife.parse_rotation(payload, rule.identity)
            _not_ahead("the rotation", rotation.at, now, skew_ms=STATEMENT_SKEW_MS,
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
                                          rotation=payload, retired_at=rotation.at,
                                          rotated_at=now)
            return _KeyChange(peer=peer, key=retired, new=rotation.new)
        if kind == KIND_KEY_REVOCATION and stype == keylife.REVOCATION:
            revocation = keylife.parse_revocation(payload, rule.identity)
            _not_ahead("the revocation", revocation.at, now, skew_ms=STATEMENT_SKEW_MS,
                       reason="bad_key_statement")
            if rule.revoked_since is not None and rule.revoked_since <= revocation.since:
                return None  # the earliest since wins: this one changes nothing
            through = rule.valid_through_seq if rule.valid_through_seq is not None else seq
            revoked = dataclasses.replace(rule, current=False, valid_through_seq=through,
                                          revoked_since=revocation.since, revocation=payload)
            return _KeyChange(peer=peer, key=revoked, new=None, revocation=revocation)
        raise VerificationError("envelope kind and statement type differ",
                                reason="bad_key_statement")

    def _record_key_change(self, change: _KeyChange, now: int) -> None:
        """The store's record of a key change, in the caller's transaction: what ``_install``
        replays at start if the files were not written (``_finish_peer_key_changes``)."""
        peer, key = change.peer, change.key
        statement = key.rotation if change.new is not None else key.revocation
        assert statement is not None
        self.store.add_event(PEER_KEY_EVENT, {
            "peer": peer, "key": key.identity.key_id.hex(),
            "statement": base64.b64encode(statement).decode("ascii"),
            "valid_through_seq": key.valid_through_seq, "accepted_at": now}, now)
        if change.new is not None:
            self.store.add_event("peer_key_rotated", {
                "peer": peer, "old_fingerprint": key.identity.fingerprint,
                "fingerprint": change.new.fingerprint}, now)
            self._audit(audit.KEY, peer, audit.key_body("changed", "peer", change.new), now)
            return
        assert change.revocation is not None
        self.store.add_event("security_alarm", {
            "peer": peer, "reason": "peer_key_revoked",
            "detail": f"{peer} revoked key {key.identity.fingerprint} "
                      f"(since {iso(change.revocation.since)}): {change.revocation.reason}. "
                      "Pin its new key only after checking the fingerprint out of band."},
            now)
        self._audit(audit.KEY, peer, audit.key_body("revoked", "peer", key.identity), now)

    def _install(self, change: _KeyChange) -> None:
        """After the commit: the key files, then the rules in memory (one key each)."""
        assert self.keystore is not None
        if change.new is not None:
            self.keystore.rotate_peer(change.peer, change.key, change.new)
            self._set_rule(PeerKey(identity=change.new, current=True))
            self.peers[change.peer] = change.new
            self._rotations.setdefault(change.peer, []).append(
                change.key.rotated_at or 0)
            del self._rotations[change.peer][:-keylife.MAX_ROTATIONS_PER_DAY]
        else:
            self.keystore.revoke_peer(change.peer, change.key)
        self._set_rule(change.key)

    def _finish_peer_key_changes(self) -> None:
        """A peer's key change committed but not yet in the key files when we stopped: apply
        it now. Only the last change of each peer can be missing (each is installed right
        after its own commit, on this one thread)."""
        if self.keystore is None:
            return
        last: dict[str, dict[str, Any]] = {}
        for data in self.store.event_data(PEER_KEY_EVENT):
            last[data["peer"]] = data
        for peer, data in last.items():
            if peer not in self.peers:
                continue
            payload = base64.b64decode(data["statement"])
            kind = (KIND_KEY_ROTATION if keylife.statement_type(payload) == keylife.ROTATION
                    else KIND_KEY_REVOCATION)
            try:
                change = self._plan_key_statement(peer, kind, payload,
                                                  data["valid_through_seq"],
                                                  data["accepted_at"])
            except PeerError:
                continue  # already superseded (e.g. the rotated key is no longer pinned)
            if change is not None:
                self._install(change)
                log.info("finished %s's key change recorded before a stop", peer)

    def _honour_revocation(self, peer: str, opened: envelope.OpenedEnvelope, now: int) -> None:
        """A revocation is safe to honour whoever made it and however it came (PROTOCOL.md
        §4.5): one from an already revoked key, or one that cannot take its place in the
        chain (a thief's envelope took that place first), still lowers ``since``."""
        if opened.header.kind != KIND_KEY_REVOCATION or self.keystore is None:
            return
        # Outside the chain nothing else bounds them: a thief lowering since a millisecond
        # at a time must not buy a transaction and a file write each.
        recent = [t for t in self._honoured.get(peer, []) if t > now - keylife.DAY_MS]
        if len(recent) >= keylife.MAX_ROTATIONS_PER_DAY:
            return
        try:
            # A key not yet retired or revoked signs nothing after what the chain holds now.
            change = self._plan_key_statement(peer, KIND_KEY_REVOCATION, opened.payload,
                                              self.store.inbound_state(peer).last_seq, now)
        except PeerError:
            return
        if change is None:
            return
        self._honoured[peer] = [*recent, now]
        with self.store.transaction():
            self._record_key_change(change, now)
        self._install(change)
        self.notify()

    def _check_peer_key(self, peer: str) -> None:
        rule = self._key_rules.get(self.peers[peer].key_id)
        if rule is not None and rule.revoked_since is not None:
            raise InputError(f"{peer} revoked its key; nothing can be sealed to {peer} until "
                             "its new key is pinned (bridge peer add --replace, after checking "
                             "the fingerprint out of band)", field="to", code="peer_key_revoked")

    def reload_peers(self, peers: Mapping[str, PublicIdentity]) -> None:
        """After ``bridge peer add`` (e.g. a key pinned out of band after a revocation)."""
        self.peers = dict(peers)
        self._load_peer_keys()

    # ============================================================ the audit log

    def _audit(self, kind: str, peer: str | None, body: dict[str, Any], now: int) -> None:
        """Append one audit record (PROTOCOL.md §11) in the caller's transaction: the log
        commits or rolls back with the change it records. One per document, envelope,
        receipt or refusal, never one per item."""
        self.store.append_audit(kind=kind, peer=peer, body=body, now=now)

    def _record_keys(self) -> None:
        """Key events: our own key and each pinned peer's when first used or changed, and a
        peer no longer pinned, so the log shows which keys were in force when."""
        known: dict[tuple[str, str], bytes] = {}
        for _, raw in self.store.audit_bodies(audit.KEY):
            b = codec.decode(raw, audit.BODY_LIMITS)
            if b["event"] == "removed":
                known.pop((b["role"], b["party"]), None)
            else:
                known[(b["role"], b["party"])] = b["key_id"]
        current = {("self", self.me.party): self.me.public}
        current.update({("peer", p): ident for p, ident in self.peers.items()})
        changes = [("added" if key not in known else "changed", key, ident)
                   for key, ident in current.items() if known.get(key) != ident.key_id]
        gone = [key for key in known if key not in current]
        if not changes and not gone:
            return
        now = self.now()
        with self.store.transaction():
            for event, (role, party), ident in changes:
                self._audit(audit.KEY, party if role == "peer" else None,
                            audit.key_body(event, role, ident), now)
            for role, party in gone:
                self._audit(audit.KEY, party if role == "peer" else None,
                            {"event": "removed", "role": role, "party": party,
                             "key_id": known[(role, party)]}, now)

    def _item_index(self, doc: int) -> dict[str, tuple[int, bytes]]:
        index = self._index_cache.get(doc)
        if index is None:
            if len(self._index_cache) >= 4:
                self._index_cache.pop(next(iter(self._index_cache)))
            index = self._index_cache[doc] = self.store.item_index(doc)
        return index

    # ============================================================ outbound documents

    def _new_id(self, kind: str) -> str:
        return f"{self.me.party}-{kind}-{self.now():x}-{self.random_bytes(4).hex()}"

    def submit_document(self, body: object) -> dict[str, Any]:
        """Validate, sign, chunk, seal and commit a roster or manifest. Raises ``InputError``."""
        self._writable()
        validate("document", body)
        assert isinstance(body, dict)
        # Records of a known category (and manifest items that declare a kind) are checked
        # against their schema here too: an integrator may skip the importer, not the rules.
        validate_submission(body["type"], body.get("meta"), body["items"])
        peer = body["to"]
        if peer not in self.peers:
            raise InputError(f"no pinned peer named {peer!r}", field="to", code="unknown_peer")
        self._check_peer_key(peer)
        doc_id = body.get("id") or self._new_id(body["type"][0])
        existing = self.store.outbound_document(peer, doc_id)
        if existing is not None:
            # A retry after a lost answer must not fail (the caller cannot tell whether the
            # first call committed): the same id with the same content is the same document.
            if not self._same_submission(existing, body):
                raise InputError(f"document {doc_id!r} already exists with other content",
                                 field="id", code="duplicate_document")
            return {"id": doc_id, "type": existing.type, "to": peer, "items": existing.count,
                    "digest": existing.digest.hex(), "existing": True}
        # Each record is the submitted object minus its id. Records are handed over one by one
        # and dropped once encoded, so a 100,000-item submission is never held twice.
        raw_items: list[Any] = body["items"]
        count = len(raw_items)
        ids: list[str] = []

        def consume() -> Iterator[Item]:
            for n in range(count):
                raw, raw_items[n] = raw_items[n], None
                item = Item(id=raw.pop("id"), data=raw)
                ids.append(item.id)
                yield item

        now = self.now()
        doc = documents.sign_document(
            self.me, doc_type=body["type"], doc_id=doc_id, recipient=peer, created=now,
            meta=body.get("meta", {}), items=consume(), count=count,
            salt_key=self.random_bytes(32))
        lh = doc.tree.levels[0]
        with self.store.transaction():
            rowid = self._insert_outbound(doc, peer, answers=None, now=now)
            self.store.insert_items(
                (rowid, n, item_id, doc.leaves[n], lh[n], "queued")
                for n, item_id in enumerate(ids))
            self._enqueue(doc, peer, rowid, now)
        self.notify()
        log.info("queued %s %s for %s: %d items", doc.header.type, doc_id, peer, count)
        return {"id": doc_id, "type": doc.header.type, "to": peer, "items": count,
                "digest": doc.digest.hex()}

    def _same_submission(self, row: DocumentRow, body: dict[str, Any]) -> bool:
        """Whether ``body`` submits exactly what the stored document ``row`` holds: type,
        meta and every item (id and record), compared in canonical form a page at a time."""
        header = documents.DocumentHeader.from_bytes(row.header)
        items: list[Any] = body["items"]
        if (row.type != body["type"] or row.count != len(items)
                or codec.encode(dict(header.meta)) != codec.encode(body.get("meta", {}))):
            return False
        for first in range(0, row.count, _COMPARE_PAGE):
            for n, leaf in enumerate(self.store.leaves(row.rowid, first, _COMPARE_PAGE),
                                     start=first):
                entry = documents.decode_declared_entry(leaf, n)
                raw = items[n]
                record = {k: v for k, v in raw.items() if k != "id"}
                if entry.item_id != raw["id"] or \
                        codec.encode(codec.canonical(record)) != codec.encode(entry.data):
                    return False
        return True

    def _insert_outbound(self, doc: SignedDocument, peer: str, *, answers: int | None,
                         now: int) -> int:
        h = doc.header
        rowid = self.store.insert_document(
            id=h.id, direction="out", peer=peer, type=h.type, digest=doc.digest,
            header=doc.signed.data, sig=doc.signed.signature, count=h.count, answers=answers,
            meta=dict(h.meta), created=h.created, state="queued", now=now)
        kind, body = audit.document_body("out", doc.signed)
        self._audit(kind, peer, body, now)
        return rowid

    def _enqueue(self, doc: SignedDocument, peer: str, rowid: int, now: int) -> None:
        """Seal each chunk with the next sequence number and chain hash (inside the caller's
        transaction, so the chain can never fork locally)."""
        recipient = self.peers[peer]
        state = self.store.outbound_state(peer)
        for chunk in chunks.split(doc, self.chunk):
            seq, prev = state.next()
            env = envelope.seal(self.me, recipient, message_id=self.random_bytes(16), seq=seq,
                                prev=prev, sent_at=now, kind=KIND_CHUNK, payload=chunk.payload)
            self.store.insert_outbox(peer=peer, seq=seq, msg_id=env.header.message_id,
                                     digest=env.digest, envelope=env.data, kind=KIND_CHUNK,
                                     doc=rowid, first=chunk.first, n=len(chunk.entries), now=now)
            self._audit(audit.ENVELOPE_QUEUED, peer, audit.envelope_body(
                env.header, codec.encode(env.header.to_map()), env.digest, doc=doc.digest,
                first=chunk.first, n=len(chunk.entries)), now)
            state = state.after(seq, env.digest)

    # ============================================================ acknowledging received items

    def acknowledge(self, doc_id: str, body: object) -> dict[str, Any]:
        self._writable()
        validate("ack", body)
        assert isinstance(body, dict)
        if not self.store.documents_by_id(doc_id, "in") \
                and self.store.documents_by_id(doc_id, "out"):
            # Say what is wrong ("not found" would send the caller looking for a typo).
            raise InputError(f"{doc_id} is a document this bridge sent; only received "
                             "documents are acknowledged", field="id", code="not_inbound")
        row = self.find_document(doc_id, "in")
        self._check_peer_key(row.peer)
        if row.type == "ack":
            raise InputError("acknowledgements are not acknowledged", field="id",
                             code="not_inbound")
        if row.state not in ("received", "acknowledged"):
            raise InputError(f"document {doc_id} has not been received completely yet",
                             field="id", code="not_ready")
        index = self._item_index(row.rowid)
        self._statuses_hold(row)  # the lifecycle is checked against the signed history
        declared_status, undeclared_status = self.store.current_statuses(row.rowid)
        # Restating exactly what an item already says states nothing: a retry after a lost
        # answer (or a sheet sent twice) records nothing new and signs no second answer.
        current = self.store.current_statements(row.rowid)
        items = (self._ack_all(body, index, declared_status, current) if "all" in body
                 else self._ack_listed(doc_id, body["items"], index, declared_status,
                                       undeclared_status, current))
        changed: dict[str, int] = {}
        for i in items:
            key = current[i.id][0] if i.id in current else "unacknowledged"
            changed[key] = changed.get(key, 0) + 1
        if not items:
            return {"ack_id": None, "items": 0, "changed": {}}
        # Acknowledgements of one document carry strictly increasing times, so that their
        # order (and so each item's final status) is unambiguous in a receipt.
        last = self.store.last_ack_created(row.rowid)
        now = max(self.now(), (last or 0) + 1)
        answered = self._stored_header(row)
        ack = documents.sign_ack(
            self.me, answers=answered, ack_id=self._new_id("ack"), created=now, items=items,
            declared_leaf_hashes={k: v[1] for k, v in index.items()},
            salt_key=self.random_bytes(32), undeclared_known=undeclared_status)
        with self.store.transaction():
            ack_row = self._insert_outbound(ack, row.peer, answers=row.rowid, now=now)
            self._record_ack_entries(ack_row, row.rowid, ack, items, index, now)
            if self.store.acknowledged_count(row.rowid) == row.count:
                self.store.set_document_state(row.rowid, "acknowledged", now)
            self._enqueue(ack, row.peer, ack_row, now)
        self.notify()
        return {"ack_id": ack.header.id, "items": len(items), "changed": changed}

    @staticmethod
    def _ack_all(body: dict[str, Any], index: Mapping[str, tuple[int, bytes]],
                 declared_status: Mapping[str, str], current: Mapping[str, Statement]
                 ) -> list[AckItem]:
        """``all``: every item not yet acknowledged, in document order. A bulk answer never
        silently overwrites a dispute: an item that has a status changes only when that status
        is named in ``including`` (and the answer counts what changed from what)."""
        including = set(body.get("including", ()))
        items = []
        for item_id in sorted(index, key=lambda i: index[i][0]):
            previous = declared_status.get(item_id)
            if (previous is not None and previous not in including) \
                    or current.get(item_id) == (body["all"], body.get("reason"), None):
                continue
            lifecycle.check(previous, body["all"], declared=True, item_id=item_id, field="all")
            items.append(AckItem(id=item_id, status=body["all"], reason=body.get("reason")))
        return items

    @staticmethod
    def _ack_listed(doc_id: str, raw_items: Sequence[dict[str, Any]],
                    index: Mapping[str, tuple[int, bytes]], declared_status: Mapping[str, str],
                    undeclared_status: Mapping[str, str], current: Mapping[str, Statement]
                    ) -> list[AckItem]:
        items = []
        problems: list[InputError] = []  # every bad item is named, not only the first
        for n, raw in enumerate(raw_items):
            item = AckItem(id=raw["id"], status=raw["status"], reason=raw.get("reason"),
                           evidence=raw.get("evidence"))
            if current.get(item.id) == (item.status, item.reason, item.evidence):
                continue
            declared = item.id in index
            try:
                if not declared and item.status != lifecycle.UNDECLARED \
                        and item.id not in undeclared_status:
                    raise InputError(f"item {item.id!r} is not in document {doc_id}",
                                     field=f"items[{n}].id", code="unknown_item")
                previous = (declared_status if declared else undeclared_status).get(item.id)
                lifecycle.check(previous, item.status, declared=declared, item_id=item.id,
                                field=f"items[{n}].status")
            except InputError as err:
                problems.append(err)
                continue
            items.append(item)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more items)" if len(problems) > 1 else ""
            raise InputError(first.detail + more, field=first.field, code=first.code,
                             problems=tuple((p.field, p.detail)
                                            for p in problems[:MAX_LISTED_PROBLEMS])
                             if len(problems) > 1 else ())
        return items

    def _record_ack_entries(self, ack_row: int, doc_row: int, ack: SignedDocument,
                            items: Sequence[AckItem],
                            index: Mapping[str, tuple[int, bytes]], at: int) -> None:
        """History rows and latest statuses for our own acknowledgement (entry n is item n)."""
        self.store.insert_ack_entries(
            (ack_row, n, doc_row, index[e.id][0] if e.id in index else None,
             e.id, e.status, e.reason, e.evidence, ack.leaves[n], at)
            for n, e in enumerate(items))
        uniform = len({(e.status, e.reason, e.evidence) for e in items}) == 1
        if uniform and len(items) == len(index) and all(e.id in index for e in items):
            # One status for every item ("all"): one set-based statement instead of N.
            e = items[0]
            self.store.set_all_statuses(doc_row, e.status, e.reason, e.evidence, at)
        else:
            self.store.update_statuses(
                (e.status, e.reason, e.evidence, at, doc_row, index[e.id][0])
                for e in items if e.id in index)

    # ============================================================ inbound envelopes

    def receive_envelope(self, data: bytes, parsed: Parsed | PeerError | None = None
                         ) -> PeerAnswer:
        """Handle one POSTed envelope. Never raises for anything the peer sent. ``parsed`` is
        ``decode_envelope(data)``, done by the caller off the database thread."""
        digest = envelope.envelope_hash(data)
        now = self.now()
        if self.store_faults:
            return self._unavailable(digest, now)
        try:
            answer = self._receive(data, parsed, digest, now)
        except StoreUnavailable as exc:
            return self._unavailable(digest, now, exc)
        if answer.outcome in ("accepted", "refused"):
            self.metrics.clear_fault(FAULT_STORE)  # a write committed: the store takes them again
        return answer

    def _unavailable(self, digest: bytes, now: int, exc: StoreUnavailable | None = None
                     ) -> PeerAnswer:
        """Our store cannot record anything now: a full disk (``exc``), or a store found not to
        be what was signed, into which nothing is taken (a receipt would promise it is kept).
        Nothing was decided, so the sender is told ``unavailable``, signed and bound to its
        envelope, and retries later with backoff (PROTOCOL §8.3). The alarm is raised where it
        can be with no disk: the log, /metrics and health."""
        if exc is not None:
            self._store_fault(exc)
        body = self._answer(None, digest, now, "rejected", transport.UNAVAILABLE)
        return PeerAnswer(status=503, body=body, outcome="unavailable")

    def _store_fault(self, exc: StoreUnavailable) -> None:
        self.metrics.inc("store_unavailable")
        if self.metrics.set_fault(FAULT_STORE, str(exc)):
            log.error("ALARM: %s; envelopes are answered 'unavailable' until it can be "
                      "written again", exc)

    def _receive(self, data: bytes, parsed: Parsed | PeerError | None, digest: bytes,
                 now: int) -> PeerAnswer:
        if parsed is None:
            parsed = decode_envelope(data)
        if isinstance(parsed, PeerError):
            return self._reject(None, None, digest, parsed.reason, str(parsed), 400, now)
        header = parsed[0]
        peer = header.sender
        if peer in self.peers and any(header.recipient_key == k.key_id for k in self.own):
            # Identical bytes were authenticated once already: answer as before.
            seen = self.store.inbox_entry(peer, header.seq)
            if seen is not None and seen[0] == digest:
                return PeerAnswer(status=200, body=transport.resign(seen[1], self.me),
                                  outcome="duplicate")
        try:
            opened = envelope.open_parsed(self.own, self.keyring, data, parsed)
        except OpaqueCryptoError as exc:
            log.warning("refused an envelope: %s", exc.detail)
            return self._reject(None, None, digest, exc.reason, exc.detail, 403, now)
        except PeerError as exc:
            # Nothing is authenticated yet: neither file it under the claimed peer nor echo
            # the claimed header in the signed answer.
            return self._reject(None, None, digest, exc.reason, str(exc), 400, now)
        if opened.header.sender not in self.peers:
            return self._reject(header, None, digest, "unauthenticated",
                                "sender is not a pinned peer", 403, now)
        retired = self._key_allows(opened.sender, header.seq)
        if retired is not None:
            self._honour_revocation(peer, opened, now)
            return self._reject(None, None, digest, "unauthenticated",
                                f"envelope {header.seq}: {retired}", 403, now, alarm=True)
        state = self.store.inbound_state(peer)
        verdict = link.classify(state, seq=header.seq, prev=header.prev, digest=digest,
                                lookup=lambda s: self.store.inbox_entry(peer, s))
        if isinstance(verdict, link.Duplicate):
            return PeerAnswer(status=200, body=transport.resign(verdict.receipt, self.me),
                              outcome="duplicate")
        if isinstance(verdict, link.Gap):
            return self._reject(header, peer, digest, "gap",
                                f"expected sequence {verdict.expected_seq}, got {verdict.got_seq}",
                                409, now, expected_seq=verdict.expected_seq, record=False)
        if isinstance(verdict, link.Equivocation):
            self._honour_revocation(peer, opened, now)
            return self._reject(header, peer, digest, "equivocation", verdict.why, 409, now,
                                alarm=True, expected_seq=state.expected_seq)
        return self._accept(opened, digest, now)

    def _answer(self, header: envelope.EnvelopeHeader | None, digest: bytes, now: int,
                result: str, reason: str | None, expected_seq: int | None = None) -> bytes:
        return transport.sign_answer(self.me, transport.TransportAnswer(
            sender=header.sender if header else None, recipient=self.me.party,
            by_key=self.me.key_id, envelope=digest,
            message_id=header.message_id if header else None,
            seq=header.seq if header else None, at=now, result=result, reason=reason,
            expected_seq=expected_seq))

    def _reject(self, header: envelope.EnvelopeHeader | None, peer: str | None,
                digest: bytes, reason: str, detail: str, status: int, now: int, *,
                alarm: bool = False, expected_seq: int | None = None,
                record: bool = True) -> PeerAnswer:
        # Refusals no pinned peer answers for are coalesced by reason (an hour's garbage is one
        # row with a count); a pinned peer's are kept one by one, as evidence against it.
        source = None if peer else UNAUTHENTICATED_SOURCE
        admitted = None
        if record:
            admitted = self.refusal_gate.admit(
                ("envelope", peer, reason, None if source else digest),
                window=0.0 if source else None)
        if admitted is not None:
            detail = f"{detail} ({admitted.note})" if admitted.note else detail
            with self.store.transaction():
                self._record_refusal(peer=peer, seq=header.seq if header else None,
                                     digest=digest, reason=reason, detail=detail, alarm=alarm,
                                     now=now, count=admitted.count, source=source)
                if alarm:
                    self.store.add_event("security_alarm", {"peer": peer, "reason": reason,
                                                            "detail": detail}, now)
            self.notify()
            log.warning("refused envelope from %s: %s (%s)", peer or "unknown", reason,
                        "see refusals" if reason == "unauthenticated" else detail)
        # The signed rejection names only what the sender could already know.
        body = self._answer(header if peer else None, digest, now, "rejected", reason,
                            expected_seq)
        return PeerAnswer(status=status, body=body, outcome="rejected")

    def record_limit_refusal(self, *, reason: str, detail: str, count: int = 1,
                             source: str = UNAUTHENTICATED_SOURCE) -> None:
        """``count`` requests the peer endpoint refused at one of its limits (too large, too
        slow, over the rate, not an envelope's content type) before they came here, from
        ``source`` (an address, or the pinned peer a request claims to be from).
        Unauthenticated, so no peer is named; the caller has asked ``refusal_gate`` already."""
        now = self.now()
        try:
            with self.store.transaction():
                self._record_refusal(peer=None, seq=None, digest=None, reason=reason,
                                     detail=detail, alarm=False, now=now, count=count,
                                     source=source)
        except StoreUnavailable as exc:
            # The refusal stands (it needs no store); only its record is lost.
            self._store_fault(exc)
            return
        self.notify()

    def _record_refusal(self, *, peer: str | None, seq: int | None, digest: bytes | None,
                        reason: str, detail: str, alarm: bool, now: int, count: int,
                        source: str | None) -> None:
        """A refusal row (or ``count`` more on its coalesced row), and the audit record of
        each new row (in the caller's transaction)."""
        if self.store.record_refusal(peer=peer, seq=seq, digest=digest, reason=reason,
                                     detail=detail, alarm=alarm, now=now, count=count,
                                     source=source):
            self._audit(audit.REFUSAL, peer, audit.refusal_body(
                direction="in", seq=seq, digest=digest, reason=reason, detail=detail,
                alarm=alarm), now)

    def _kind_handlers(self) -> dict[str, _KindHandler]:
        """The envelope kinds of version 1 (PROTOCOL §8.1) and what each does; any other kind
        is refused with ``unknown_kind``."""
        def key_statement(kind: str) -> _KindHandler:
            def apply(peer: str, payload: bytes, chunk: chunks.ReceivedChunk | None, seq: int,
                      now: int) -> Callable[[], None] | None:
                change = self._plan_key_statement(peer, kind, payload, seq, now)
                if change is None:
                    return None
                self._record_key_change(change, now)
                return lambda: self._install(change)

            return _KindHandler(parse=lambda payload: None, apply=apply)

        def chunk(peer: str, payload: bytes, received: chunks.ReceivedChunk | None, seq: int,
                  now: int) -> None:
            self._apply_chunk(peer, _the(received), now)

        return {
            KIND_CHUNK: _KindHandler(parse=lambda payload: chunks.parse(payload, PAYLOAD_LIMITS),
                                     apply=chunk),
            KIND_KEY_ROTATION: key_statement(KIND_KEY_ROTATION),
            KIND_KEY_REVOCATION: key_statement(KIND_KEY_REVOCATION),
        }

    def _accept(self, opened: envelope.OpenedEnvelope, digest: bytes, now: int) -> PeerAnswer:
        header = opened.header
        peer = header.sender
        header_bytes = codec.encode(header.to_map())
        chunk: chunks.ReceivedChunk | None = None
        after: Callable[[], None] | None = None
        try:
            handler = self._kinds.get(header.kind)
            if handler is None:
                raise PeerError(f"unknown envelope kind {header.kind!r}", reason="unknown_kind")
            _not_ahead("envelope at", header.sent_at, now)
            chunk = handler.parse(opened.payload)
            with self.store.transaction():
                receipt = self._answer(header, digest, now, "accepted", None)
                self.store.insert_inbox(peer=peer, seq=header.seq, msg_id=header.message_id,
                                        digest=digest, header=header_bytes,
                                        kind=header.kind, result="accepted", receipt=receipt,
                                        now=now)
                self._audit_inbound(opened, header_bytes, digest, chunk, "accepted", None,
                                    receipt, now)
                after = handler.apply(peer, opened.payload, chunk, header.seq, now)
        except StoreUnavailable:
            raise  # not the content's fault: nothing is recorded, the sender retries
        except StoreCorrupt:  # our fault, found while applying it: not the peer's to answer for
            self._save_alarms()
            return self._unavailable(digest, now)
        except BridgeError as exc:
            reason = exc.code if isinstance(exc, PeerError) else "invalid_content"
            # Authenticated, in sequence, but its content is refused: the envelope still takes
            # its place in the chain (so later ones are not blocked), with a signed refusal.
            receipt = self._answer(header, digest, now, "refused", reason)
            with self.store.transaction():
                self.store.insert_inbox(peer=peer, seq=header.seq, msg_id=header.message_id,
                                        digest=digest, header=header_bytes,
                                        kind=header.kind, result="refused", receipt=receipt,
                                        now=now)
                self._audit_inbound(opened, header_bytes, digest, chunk, "refused", reason,
                                    receipt, now)
                self.store.record_refusal(peer=peer, seq=header.seq, digest=digest,
                                          reason=reason, detail=str(exc), alarm=True, now=now)
                self._audit(audit.REFUSAL, peer, audit.refusal_body(
                    direction="in", seq=header.seq, digest=digest, reason=reason,
                    detail=str(exc), alarm=True), now)
                self.store.add_event("document_refused", {"peer": peer, "reason": reason,
                                                          "detail": str(exc)}, now)
            self.notify()
            log.warning("refused content of envelope %d from %s: %s", header.seq, peer, exc)
            return PeerAnswer(status=200, body=receipt, outcome="refused")
        if after is not None:
            # Committed: only now does state outside the store change (the key files), so a
            # rollback leaves them as they were and the store and the files never disagree.
            after()
        self.notify()
        return PeerAnswer(status=200, body=receipt, outcome="accepted")

    def _audit_inbound(self, opened: envelope.OpenedEnvelope, header_bytes: bytes,
                       digest: bytes, chunk: chunks.ReceivedChunk | None, result: str,
                       reason: str | None, receipt: bytes, now: int) -> None:
        """An envelope taken into the chain, and the transport receipt we issued for it."""
        header = opened.header
        peer = header.sender
        self._audit(audit.ENVELOPE_RECEIVED, peer, audit.envelope_body(
            header, header_bytes, digest, doc=chunk.signed.digest if chunk else None,
            first=chunk.first if chunk else None, n=len(chunk.entries) if chunk else None,
            result=result, sig=opened.signature, ct_hash=opened.ciphertext_hash), now)
        self._audit(audit.RECEIPT_ISSUED, peer, audit.receipt_body(
            seq=header.seq, envelope=digest, result=result, reason=reason, receipt=receipt), now)

    def _apply_chunk(self, peer: str, chunk: chunks.ReceivedChunk, now: int) -> None:
        signed = chunk.signed
        h = signed.header
        signed.check_signature(self.keyring)
        _not_ahead(f"{h.type} {h.id} created", h.created, now)
        reason = self.keyring.void_reason(h.issuer_key, h.created)
        if reason is not None:
            # Dated at or after a revocation's since, or after a rotation retired the key.
            raise VerificationError(f"{h.type} {h.id} is signed by a "
                                    f"{reason.removesuffix('_key')} key", reason=reason)
        if h.issuer != peer:
            raise VerificationError(f"document issued by {h.issuer}, sent by {peer}",
                                    reason="wrong_issuer")
        if h.recipient != self.me.party:
            raise VerificationError(f"document addressed to {h.recipient}",
                                    reason="wrong_recipient")
        row = self.store.document_by_digest(signed.digest)
        if row is None:
            row = self._new_inbound(peer, signed, now)
        if row.direction != "in" or row.stored != chunk.first:
            raise VerificationError(f"chunk at {chunk.first} of {h.id} out of order "
                                    f"(have {row.stored})", reason="bad_chunk")
        if h.type == documents.ACK:
            self._apply_ack_chunk(peer, row, chunk, now)
        else:
            decoded = [documents.decode_declared_entry(e, chunk.first + n)
                       for n, e in enumerate(chunk.entries)]
            for d in decoded:  # the local API shows it as JSON (PROTOCOL.md §6.4)
                problem = documents.json_data_problem(d.data, "data")
                if problem is not None:
                    raise VerificationError(f"entry {d.index} {problem[0]}: {problem[1]}",
                                            reason="bad_entry")
            self.store.insert_items(
                (row.rowid, d.index, d.item_id, chunk.entries[n], chunk.leaf_hashes[n],
                 "unacknowledged") for n, d in enumerate(decoded))
        stored = self.store.add_stored(row.rowid, len(chunk.entries))
        if stored == h.count:
            if h.type == documents.ACK:
                self.store.set_document_state(row.rowid, "received", now)
            else:
                self.store.set_document_state(row.rowid, "received", now)
                self.store.add_event("document_received", {
                    "id": h.id, "type": h.type, "peer": peer, "items": h.count}, now)

    def _new_inbound(self, peer: str, signed: documents.SignedHeader, now: int) -> DocumentRow:
        h = signed.header
        if self.store.document_exists("in", peer, h.id):
            raise VerificationError(f"{peer} already sent a different document {h.id}",
                                    reason="duplicate_document")
        answers = None
        if h.type == documents.ACK:
            assert h.answers is not None
            target = self.store.document_by_digest(h.answers)
            if target is None or target.direction != "out" or target.peer != peer:
                raise VerificationError(f"acknowledgement {h.id} answers no document sent to "
                                        f"{peer}", reason="unknown_document")
            answers = target.rowid
            last = self.store.last_ack_created(target.rowid)
            if last is not None and h.created <= last:
                raise VerificationError(f"acknowledgement {h.id} is not later than the previous "
                                        f"acknowledgement of {target.id}", reason="ack_order")
        rowid = self.store.insert_document(
            id=h.id, direction="in", peer=peer, type=h.type, digest=signed.digest,
            header=signed.data, sig=signed.signature, count=h.count, answers=answers,
            meta=dict(h.meta), created=h.created, state="receiving", now=now)
        kind, body = audit.document_body("in", signed)
        self._audit(kind, peer, body, now)
        row = self.store.document_by_rowid(rowid)
        assert row is not None
        return row

    def _apply_ack_chunk(self, peer: str, ack_row: DocumentRow, chunk: chunks.ReceivedChunk,
                         now: int) -> None:
        assert ack_row.answers is not None
        target = self.store.document_by_rowid(ack_row.answers)
        assert target is not None
        index = self._item_index(target.rowid)
        at = chunk.signed.header.created
        rows, updates, changed = [], [], 0
        entries = [documents.decode_ack_entry(leaf, chunk.first + n)
                   for n, leaf in enumerate(chunk.entries)]
        indexes = [index[e.item_id][0] for e in entries if e.item_id in index]
        if indexes:  # the lifecycle is checked against the signed history, not a stale copy
            self._statuses_hold(target, min(indexes), max(indexes))
        previous = self.store.statuses_at(target.rowid, indexes)
        # Items never declared are rare: look their history up only when a chunk has one.
        undeclared_status = (self.store.undeclared_statuses(target.rowid)
                             if any(e.item_id not in index for e in entries) else {})
        seen: set[str] = set()
        for n, e in enumerate(entries):
            leaf = chunk.entries[n]
            declared = index.get(e.item_id)
            if e.item_id in seen:
                raise VerificationError(f"item {e.item_id} acknowledged twice in one "
                                        "acknowledgement", reason="bad_ack")
            seen.add(e.item_id)
            if declared is None:
                if e.leaf is not None:
                    raise VerificationError(f"acknowledged item {e.item_id} is not declared",
                                            reason="bad_ack")
                before = undeclared_status.get(e.item_id)
            elif e.leaf != declared[1]:
                raise VerificationError(f"acknowledged item {e.item_id} is not the declared "
                                        "entry", reason="bad_ack")
            else:
                before = previous.get(declared[0])
            if not lifecycle.allowed(before, e.status, declared=declared is not None):
                raise VerificationError(f"item {e.item_id}: {before or 'no status'} may not "
                                        f"change to {e.status}", reason="transition_not_allowed")
            rows.append((ack_row.rowid, e.index, target.rowid,
                         declared[0] if declared else None, e.item_id, e.status, e.reason,
                         e.evidence, leaf, at))
            if declared is not None:
                updates.append((e.status, e.reason, e.evidence, at, target.rowid, declared[0]))
                changed += 1
        self.store.insert_ack_entries(rows)
        self.store.update_statuses(updates)
        # Acknowledgement latency: from our signing of the document to the peer's signing of
        # its acknowledgement (both clocks are the parties' own; good enough for operations).
        self.metrics.observe_ack_latency(max(0, at - target.created) / 1000, changed)
        self.store.add_event("item_status_changed", {
            "document": target.id, "ack": chunk.signed.header.id, "items": len(rows),
            "sample": [r[4] for r in rows[:20]]}, now)
        last_chunk = chunk.first + len(chunk.entries) == ack_row.count
        if last_chunk and self.store.acknowledged_count(target.rowid) == target.count:
            if target.state != "acknowledged":
                self.store.set_document_state(target.rowid, "acknowledged", now)
                self.store.add_event("document_acknowledged", {
                    "id": target.id, "peer": peer, "items": target.count}, now)

    # ============================================================ delivery bookkeeping

    def next_pending(self, peer: str) -> OutboxRow | None:
        return self.store.next_pending(peer)

    def count_attempt(self, row: OutboxRow) -> None:
        with self.store.transaction():
            self.store.count_attempt(row.peer, row.seq)
            if row.attempts == 0 and row.doc is not None and row.first is not None \
                    and row.n is not None:
                self.store.set_transport(row.doc, row.first, row.n, "sent")

    def delivery_answer(self, row: OutboxRow, status: int, body: bytes) -> DeliveryOutcome:
        """Act on the peer's answer to ``row``. An answer that is not signed by the peer, is
        malformed, or names another envelope is a failure (PROTOCOL §8.3)."""
        now = self.now()
        try:
            answer = transport.parse_answer(body, self.peers[row.peer])
            transport.check_receipt_matches(answer, digest=row.digest, seq=row.seq,
                                            message_id=row.msg_id)
        except PeerError as exc:
            return DeliveryOutcome(state="failed", detail=f"HTTP {status} without a valid "
                                   f"signed answer ({exc.reason}): {exc}")
        if answer.result == "rejected":
            return self._rejected(row, answer)
        with self.store.transaction():
            self._audit(audit.RECEIPT_RECEIVED, row.peer, audit.receipt_body(
                seq=row.seq, envelope=row.digest, result=answer.result, reason=answer.reason,
                receipt=body), now)
            if answer.result == "accepted":
                self.store.finish_outbox(row.peer, row.seq, "delivered", body, now)
                self._delivered(row, now)
            else:
                self.store.finish_outbox(row.peer, row.seq, "refused", body, now)
                if row.doc is not None:
                    self.store.set_document_state(row.doc, "refused", now)
                self.store.record_refusal(peer=row.peer, seq=row.seq, digest=row.digest,
                                          reason=answer.reason or "refused",
                                          detail="the peer refused our document", alarm=True,
                                          now=now)
                self._audit(audit.REFUSAL, row.peer, audit.refusal_body(
                    direction="out", seq=row.seq, digest=row.digest,
                    reason=answer.reason or "refused", detail="the peer refused our document",
                    alarm=True), now)
                self.store.add_event("security_alarm", {
                    "peer": row.peer, "reason": answer.reason,
                    "detail": f"peer refused envelope {row.seq}"}, now)
        self.notify()
        return DeliveryOutcome(state="delivered" if answer.result == "accepted" else "refused")

    def _rejected(self, row: OutboxRow, answer: transport.TransportAnswer) -> DeliveryOutcome:
        """A signed rejection of ``row`` (bound to it: ``check_receipt_matches``). A gap
        names an earlier envelope to resend from; nothing else changes the outbox."""
        if answer.reason == "gap" and answer.expected_seq is not None:
            with self.store.transaction():
                self.store.rewind_outbox(row.peer, answer.expected_seq)
            return DeliveryOutcome(state="rewound", detail=f"peer expects {answer.expected_seq}")
        if answer.reason == transport.UNAVAILABLE:
            return DeliveryOutcome(state="unavailable",
                                   detail="the peer cannot record envelopes now")
        return DeliveryOutcome(state="failed", detail=f"rejected: {answer.reason}")

    def _delivered(self, row: OutboxRow, now: int) -> None:
        if row.doc is None:
            return
        doc = self.store.document_by_rowid(row.doc)
        assert doc is not None
        if doc.type != documents.ACK and row.first is not None and row.n is not None:
            self.store.set_transport(doc.rowid, row.first, row.n, "delivered")
        if self.store.pending_for_doc(doc.rowid) == 0 and doc.state in ("queued", "sending"):
            self.store.set_document_state(doc.rowid, "delivered", now)
            self.store.add_event("document_delivered", {"id": doc.id, "type": doc.type,
                                                        "peer": doc.peer}, now)
        elif doc.state == "queued":
            self.store.set_document_state(doc.rowid, "sending", now)

    def peer_event(self, kind: str, peer: str, detail: str, reason: str | None = None) -> None:
        data = {"peer": peer, "detail": detail}
        if reason is not None:  # security alarms name a reason code, as the others do
            data["reason"] = reason
        with self.store.transaction():
            self.store.add_event(kind, data, self.now())
        self.notify()

    # ============================================================ queries for the local API

    def find_document(self, doc_id: str, direction: str | None = None) -> DocumentRow:
        rows = [r for r in self.store.documents_by_id(doc_id, direction)]
        if not rows:
            raise InputError(f"no document {doc_id!r}", field="id", code="not_found")
        if len(rows) > 1:
            raise InputError(f"{doc_id!r} exists in both directions; give direction=in|out",
                             field="direction", code="ambiguous")
        damaged = [f for f in self.store_faults if f.doc == rows[0].rowid]
        if damaged:
            raise StoreCorrupt(str(damaged[0]))
        return rows[0]

    def summary(self, row: DocumentRow) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row.id, "type": row.type, "direction": row.direction, "peer": row.peer,
            "state": row.state, "created": iso(row.created), "digest": row.digest.hex(),
            "meta": row.meta,
        }
        if row.type == documents.ACK:
            answered = self.store.document_by_rowid(row.answers) if row.answers else None
            out["answers"] = answered.id if answered else None
            out["items"] = {"total": row.count, "acknowledged": row.count, "by_status": {}}
            return out
        self._statuses_hold(row)
        acknowledged = self.store.acknowledged_count(row.rowid)
        out["items"] = {"total": row.count, "acknowledged": acknowledged,
                        "by_status": self.store.status_counts(row.rowid)}
        deadline = deadlines.deadline_of(row.meta)
        if deadline is not None:
            out["deadline"] = iso(deadline)
            out["items"]["overdue"] = (row.count - acknowledged) if self.now() > deadline else 0
        return out

    def check_deadlines(self) -> int:
        """Raise one ``acknowledgement_overdue`` event per document whose deadline has passed
        with items still unacknowledged. Returns how many were raised."""
        now = self.now()
        raised = 0
        for row in self.store.documents_with_meta_key(deadlines.FIELD):
            deadline = deadlines.deadline_of(row.meta)
            if deadline is None or now <= deadline or row.type == documents.ACK:
                continue
            overdue = row.count - self.store.acknowledged_count(row.rowid)
            if overdue <= 0 or self.store.has_event("acknowledgement_overdue", row.rowid):
                continue
            with self.store.transaction():
                self.store.add_event("acknowledgement_overdue", {
                    "id": row.id, "doc": row.rowid, "direction": row.direction,
                    "peer": row.peer, "deadline": iso(deadline), "overdue": overdue}, now)
            raised += 1
            log.warning("%s %s: %d items not acknowledged by the deadline %s", row.type, row.id,
                        overdue, iso(deadline))
        if raised:
            self.notify()
        return raised

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       limit: int, after: str | None = None) -> list[dict[str, Any]]:
        before = None
        if after:
            # The next page starts after that document (an id used both ways: after the newer,
            # so that nothing is skipped).
            rows = self.store.documents_by_id(after, direction)
            if not rows:
                raise InputError(f"no document {after!r} to continue after", field="after")
            before = max(r.rowid for r in rows)
        return [self.summary(r) for r in self.store.list_documents(
            direction=direction, type=type, peer=peer, include_acks=type == "ack",
            limit=limit, before=before)]

    def document_detail(self, doc_id: str, direction: str | None) -> dict[str, Any]:
        row = self.find_document(doc_id, direction)
        out = self.summary(row)
        out["acks"] = [{"id": a.id, "created": iso(a.created), "items": a.count,
                        "direction": a.direction, "state": a.state}
                       for a in self.store.acks_of(row.rowid)]
        return out

    def _item_json(self, row: DocumentRow, r: Sequence[Any]) -> dict[str, Any]:
        what = check_declared_entry(r[0], r[1], r[6], r[7])
        if what is not None:
            self._corrupt(StoreFault(where=self._where(row), what=what, doc=row.rowid))
        out: dict[str, Any] = {"id": r[1], "index": r[0], "status": r[2], "reason": r[3],
                               "evidence": r[4], "updated": iso(r[5])}
        deadline = deadlines.deadline_of(row.meta)
        if deadline is not None:
            out["overdue"] = r[2] not in documents.ACK_STATUSES and self.now() > deadline
        if row.direction == "in":
            out["data"] = _shown(documents.decode_declared_entry(r[6], r[0]).data)
        return out

    def items(self, doc_id: str, *, direction: str | None, status: str | None,
              after: str | None, limit: int) -> dict[str, Any]:
        row = self.find_document(doc_id, direction)
        try:
            start = int(after) if after else -1
        except ValueError as exc:
            raise InputError("must be the 'next' value of a previous page", field="after"
                             ) from exc
        page = self.store.items_page(row.rowid, status=status, after=start, limit=limit)
        if page:
            self._statuses_hold(row, page[0][0], page[-1][0])
        nxt = str(page[-1][0]) if len(page) == limit else None
        return {"items": [self._item_json(row, r) for r in page], "next": nxt}

    def item(self, doc_id: str, item_id: str, direction: str | None) -> dict[str, Any]:
        row = self.find_document(doc_id, direction)
        r = self.store.item_row(row.rowid, item_id)
        history = [{"status": h[0], "reason": h[1], "evidence": h[2], "at": iso(h[3]),
                    "ack_id": h[4]} for h in self.store.item_history(row.rowid, item_id)]
        if r is None:
            if not history:
                raise InputError(f"no item {item_id!r} in {doc_id}", field="item_id",
                                 code="not_found")
            # Found by the receiver although never declared: it exists only in the history.
            last = history[-1]
            return {"id": item_id, "index": None, "declared": False, "status": last["status"],
                    "reason": last["reason"], "evidence": last["evidence"],
                    "updated": last["at"], "history": history}
        self._statuses_hold(row, r[0], r[0])
        out = self._item_json(row, r)
        out["declared"] = True
        out["history"] = history
        return out

    def document_bundle(self, doc_id: str, direction: str | None
                        ) -> tuple[SignedDocument, list[SignedDocument]]:
        """The signed document and its acknowledgements, as needed to build receipts."""
        row = self.find_document(doc_id, direction)
        doc = SignedDocument(signed=self._stored_header(row),
                             leaves=tuple(self.store.leaves(row.rowid)))
        acks = []
        for a in self.store.acks_of(row.rowid):
            acks.append(SignedDocument(signed=self._stored_header(a),
                                       leaves=tuple(self.store.ack_leaves(a.rowid))))
        return doc, acks

    def receipt(self, doc_id: str, item_id: str | None, direction: str | None) -> bytes:
        """A receipt bundle: one item's (declared entry and its acknowledgement history) or the
        whole document's. Either side can export it; both hold the same signed bytes."""
        doc, acks = self.document_bundle(doc_id, direction)
        if not acks:
            raise InputError(f"document {doc_id} has no acknowledgement yet", field="id",
                             code="not_ready")
        row = self.find_document(doc_id, direction)
        if item_id is None:
            return self._verified_receipt(row, lambda: receipts.build_document_receipt(doc, acks))
        index = self._item_index(row.rowid)
        if item_id not in index:
            raise InputError(f"no item {item_id!r} in {doc_id}", field="item", code="not_found")
        return self._verified_receipt(
            row, lambda: receipts.build_item_receipt(doc, item_id, acks))

    def _verified_receipt(self, row: DocumentRow, build: Callable[[], bytes]) -> bytes:
        """A receipt leaves only if it verifies as a mediator will check it (``bridge
        verify``): built from a damaged store it would not, and the fault is ours (as it is
        when stored bytes cannot even be decoded to build it)."""
        try:
            data = build()
        except InputError:
            raise
        except BridgeError as exc:
            self._corrupt(StoreFault(where=self._where(row), doc=row.rowid,
                                     what=f"a receipt cannot be built from it: {exc}"))
        keys = Keyring.of([*self.keyring, *(k.public for k in self.own)],
                          revoked=self.keyring.revoked)
        result = receipts.check_receipt(data, keys)
        if not result.ok:
            self._corrupt(StoreFault(where=self._where(row), doc=row.rowid,
                                     what=f"a receipt built from it does not verify: "
                                          f"{result.diagnosis} [{result.reason}]"))
        return data

    def reconcile(self, *, peer: str | None = None, quota: int | None = None
                  ) -> dict[str, Any]:
        """The reconciliation report (``bridge.reports``), as JSON data: grouped counts from
        the store, never a walk over the items. ``quota``: an agreement-level quota a side."""
        if peer is not None and peer not in self.peers and not self.store.list_documents(
                direction=None, type=None, peer=peer, limit=1):
            raise InputError(f"no pinned peer named {peer!r}", field="peer",
                             code="unknown_peer")
        if quota is not None and quota < 1:
            raise InputError("must be a positive whole number", field="quota")
        mismatch = self.store.status_mismatch_any(peer)
        if mismatch is not None:
            doc = self.store.document_by_rowid(mismatch[0])
            assert doc is not None
            self._corrupt(StoreFault(where=self._where(doc), what=mismatch[1], doc=doc.rowid))
        report = build_reconciliation(
            party=self.me.party, peer=peer, generated=iso(self.now()) or "", quota=quota,
            peers=[peer] if peer else sorted(self.peers),
            items=self.store.reconcile_items(peer),
            documents=self.store.reconcile_documents(peer),
            reasons=self.store.reason_counts(peer, REASON_STATUSES))
        return report_json(report)

    def health(self) -> dict[str, Any]:
        # A fault (a store that cannot be written, a background task that died) makes the
        # daemon "degraded" and is named, so a monitor sees it without reading the log; a
        # store that is not what was signed is worse, and says so.
        faults = self.metrics.faults()
        status = "store_corrupt" if self.store_faults else "degraded" if faults else "ok"
        return {"status": status, "faults": faults,
                "party": self.me.party, "fingerprint": self.me.public.fingerprint,
                "store": {"ok": not self.store_faults,
                          "faults": [str(f) for f in self.store_faults]},
                "peers": {p: {"queued": self.store.pending_count(p)} for p in self.peers}}

    # ============================================================ a store that lies

    def check_store(self) -> list[StoreFault]:
        """The whole store check (``bridge/engine/store_check.py``), at start: what it finds raises
        the alarm and makes the store read-only."""
        started = time.monotonic()
        faults = self.store.check()
        for fault in faults:
            self.store_fault(fault)
        self.metrics.set_gauge("store_corrupt", int(bool(self.store_faults)))
        log.info("store check: %s in %.1f s", f"{len(faults)} faults" if faults else "sound",
                 time.monotonic() - started)
        return faults

    def store_fault(self, fault: StoreFault) -> None:
        """Something stored is not what was signed, or cannot be read: the security alarm
        (health, /metrics, the log, the event stream), once per fault."""
        if fault in self.store_faults:
            return
        if len(self.store_faults) < MAX_FAULTS:
            self.store_faults.append(fault)
        self.metrics.inc("store_faults")
        self.metrics.set_gauge("store_corrupt", 1)
        log.error("the store is damaged: %s", fault)
        self._alarms_due.append(fault)
        if not self.store.db.in_transaction:  # else once the caller's has rolled back
            self._save_alarms()

    def _save_alarms(self) -> None:
        """The event of each store fault found, in a transaction of its own."""
        due, self._alarms_due = self._alarms_due, []
        try:
            with self.store.transaction():
                for fault in due:
                    self.store.add_event("security_alarm", {"reason": "store_corrupt",
                                                            "detail": str(fault)}, self.now())
            self.notify()
        except Exception:  # a damaged events table: the log, health and metrics still say it
            log.exception("could not record the store_corrupt alarm in the event log")

    def _corrupt(self, fault: StoreFault) -> NoReturn:
        self.store_fault(fault)
        raise StoreCorrupt(str(fault))

    def _writable(self) -> None:
        if self.store_faults:
            raise StoreCorrupt(f"the store is damaged ({self.store_faults[0]}); it is read-only "
                               "until restored from a backup (see bridge audit verify)")

    @staticmethod
    def _where(row: DocumentRow) -> str:
        return f"{row.direction} {row.type} {row.id} ({row.peer})"

    def _stored_header(self, row: DocumentRow) -> documents.SignedHeader:
        try:
            header = documents.DocumentHeader.from_bytes(row.header)
        except BridgeError as exc:
            self._corrupt(StoreFault(where=self._where(row), doc=row.rowid,
                                     what=f"the stored header cannot be read: {exc}"))
        return documents.SignedHeader(header=header, data=row.header, signature=row.sig)

    def _statuses_hold(self, row: DocumentRow, first: int = 0, last: int = 1 << 62) -> None:
        """Every status reported from the items table is checked against the signed history
        (the one source of truth) on the way out."""
        what = self.store.status_mismatch(row.rowid, first, last)
        if what is not None:
            self._corrupt(StoreFault(where=self._where(row), what=what, doc=row.rowid))


__all__ = ["DecodeError", "DeliveryOutcome", "Exchange", "PeerAnswer"]
