"""Inbound: one envelope a peer sent, authenticated, classified by the link state machine, and
its content applied in the same transaction that records it in the inbox together with the
signed transport receipt; a duplicate gets that stored receipt back (PROTOCOL.md §8).

``receive`` never raises for anything the peer sent: every envelope gets an ``Answer`` (an
outcome and a signed transport answer). What the answer is carried in (an HTTP status, a
relay's reply) is the transport's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.core import answers as transport
from bridge.core import audit, chunks, codec, envelope, link, peer_log
from bridge.core.beside import Beside, Pending, inline
from bridge.core.chunks import PAYLOAD_LIMITS
from bridge.core.errors import (
    BridgeError,
    OpaqueCryptoError,
    PeerError,
    StoreCorrupt,
    StoreUnavailable,
)
from bridge.core.link import InboundState
from bridge.engine.chunk_ahead import Ahead, PreparedChunk, parse_chunk
from bridge.engine.context import Engine
from bridge.engine.intake import Intake
from bridge.engine.keys import Keys
from bridge.engine.kinds import (
    KIND_CHECKPOINT,
    KIND_CHUNK,
    KIND_KEY_REVOCATION,
    KIND_KEY_ROTATION,
)
from bridge.engine.limits import RefusalGate
from bridge.engine.outcomes import Answer, Outcome
from bridge.engine.peer_checkpoints import PeerCheckpoints
from bridge.engine.trust import refuse_ahead

log = logging.getLogger("bridge.exchange")

UNAUTHENTICATED_SOURCE = "unauthenticated"
"""The source of coalesced refusals of envelopes whose sender is not a pinned peer."""

Parsed = tuple[envelope.EnvelopeHeader, bytes, bytes, bytes]
AfterCommit = Callable[[], None]


def decode_envelope(data: bytes) -> Parsed | PeerError:
    """The envelope split and its header decoded, or why not. Pure and bounded (PROTOCOL.md
    §5.1): the peer endpoint runs it beside the database thread, never on it."""
    try:
        return envelope.parse(data, limits=PAYLOAD_LIMITS)
    except PeerError as exc:
        return exc


@dataclass(frozen=True, kw_only=True)
class KindHandler:
    """What one envelope kind does on arrival: ``parse`` its payload before the transaction
    (a ``PeerError`` refuses the content) and ``apply`` it inside; what ``apply`` returns is
    run after the commit (state outside the database changes only once the store has it)."""

    parse: Callable[[bytes], object]
    apply: Callable[[str, bytes, Any, int, int], AfterCommit | None]
    # Checks of what ``parse`` returned that read no store (a document's signature), run
    # before the transaction: beside the receipt's signature. Peer, what ``parse`` returned,
    # now; raises ``BridgeError`` to refuse the content.
    check: Callable[[str, Any, int], None] | None = None
    # Run in the refusal's transaction when the content is refused (the evidence it keeps
    # commits with the refusal): peer, the error, what ``parse`` returned, now.
    refused: Callable[[str, BridgeError, object, int], None] | None = None


class Inbound:
    def __init__(self, engine: Engine, keys: Keys, refusal_gate: RefusalGate) -> None:
        self.e = engine
        self.keys = keys
        # Which refusals get a row: a flood must not grow the store without bound (limits.py).
        self.refusal_gate = refusal_gate
        self.intake = Intake(engine)
        self.peer_checkpoints = PeerCheckpoints(engine)
        self.kinds = self._kind_handlers()

    def _kind_handlers(self) -> dict[str, KindHandler]:
        """The envelope kinds of version 1 (PROTOCOL §8.1) and what each does; any other kind
        is refused with ``unknown_kind``."""
        def key_statement(kind: str) -> KindHandler:
            def apply(peer: str, payload: bytes, chunk: chunks.ReceivedChunk | None, seq: int,
                      now: int) -> AfterCommit | None:
                return self.keys.statement_arrived(peer, kind, payload, seq, now)

            return KindHandler(parse=lambda payload: None, apply=apply)

        def chunk(peer: str, payload: bytes, prepared: PreparedChunk, seq: int,
                  now: int) -> None:
            self.intake.apply_chunk(peer, prepared, now)

        def check_chunk(peer: str, prepared: PreparedChunk, now: int) -> None:
            self.intake.check_chunk(peer, prepared.chunk, now)

        def checkpoint(peer: str, payload: bytes, msg: peer_log.PeerCheckpoint, seq: int,
                       now: int) -> None:
            self.peer_checkpoints.apply(peer, msg, now)

        return {
            KIND_CHECKPOINT: KindHandler(parse=peer_log.decode, apply=checkpoint,
                                         refused=self.peer_checkpoints.refused),
            KIND_CHUNK: KindHandler(parse=parse_chunk, check=check_chunk, apply=chunk),
            KIND_KEY_ROTATION: key_statement(KIND_KEY_ROTATION),
            KIND_KEY_REVOCATION: key_statement(KIND_KEY_REVOCATION),
        }

    # ------------------------------------------------------------ one envelope

    def receive(self, data: bytes, parsed: Parsed | PeerError | None = None,
                ahead: Ahead | None = None) -> Answer:
        """Handle one envelope. Never raises for anything the peer sent. ``parsed`` is
        ``decode_envelope(data)``, done by the caller off the database thread; ``ahead``, a
        chunk's pure work done beside it (``open_ahead``, ``chunk_ahead``), taken only for
        the very payload this opens."""
        digest = envelope.envelope_hash(data)
        now = self.e.now()
        if self.e.guard.faults:
            return self._unavailable(digest, now)
        try:
            answer = self._receive(data, parsed, digest, now, ahead)
        except StoreUnavailable as exc:
            return self._unavailable(digest, now, exc)
        if answer.outcome in (Outcome.ACCEPTED, Outcome.REFUSED):
            self.e.guard.written()
        return answer

    def _unavailable(self, digest: bytes, now: int, exc: StoreUnavailable | None = None
                     ) -> Answer:
        """Our store cannot record anything now: a full disk (``exc``), or a store found not to
        be what was signed, into which nothing is taken (a receipt would promise it is kept).
        Nothing was decided, so the sender is told ``unavailable``, signed and bound to its
        envelope, and retries later with backoff (PROTOCOL §8.3). The alarm is raised where it
        can be with no disk: the log, /metrics and health."""
        if exc is not None:
            self.e.guard.unavailable(exc)
        body = self._answer(None, digest, now, "rejected", transport.UNAVAILABLE)
        return Answer(outcome=Outcome.UNAVAILABLE, body=body, reason=transport.UNAVAILABLE)

    def _receive(self, data: bytes, parsed: Parsed | PeerError | None, digest: bytes,
                 now: int, ahead: Ahead | None = None) -> Answer:
        trust = self.e.trust
        if parsed is None:
            parsed = decode_envelope(data)
        if isinstance(parsed, PeerError):
            return self._reject(Outcome.MALFORMED, None, None, digest, parsed.reason,
                                str(parsed), now)
        header = parsed[0]
        peer = header.sender
        state: InboundState | None = None
        if trust.is_pinned(peer) and trust.is_for_us(header.recipient_key):
            # The link's state, read once: it answers both "seen before?" (only a sequence
            # number at or below the last can be in the inbox) and the link rules below.
            state = self.e.store.inbound_state(peer)
            seen = (self.e.store.inbox_entry(peer, header.seq)
                    if header.seq <= state.last_seq else None)
            if seen is not None and seen[0] == digest:
                # Identical bytes were authenticated once already: answer as before.
                return Answer(outcome=Outcome.DUPLICATE, body=transport.resign(seen[1], trust.me))
        try:
            opened = envelope.open_parsed(trust.own, trust.keyring, data, parsed, digest=digest)
        except OpaqueCryptoError as exc:
            log.warning("refused an envelope: %s", exc.detail)
            return self._reject(Outcome.UNAUTHENTICATED, None, None, digest, exc.reason,
                                exc.detail, now)
        except PeerError as exc:
            # Nothing is authenticated yet: neither file it under the claimed peer nor echo
            # the claimed header in the signed answer.
            return self._reject(Outcome.MALFORMED, None, None, digest, exc.reason, str(exc), now)
        if not trust.is_pinned(opened.header.sender):
            return self._reject(Outcome.UNAUTHENTICATED, header, None, digest,
                                "unauthenticated", "sender is not a pinned peer", now)
        retired = trust.key_refusal(opened.sender, header.seq)
        if retired is not None:
            self.keys.honour_revocation(peer, opened, now)
            return self._reject(Outcome.UNAUTHENTICATED, None, None, digest, "unauthenticated",
                                f"envelope {header.seq}: {retired}", now, alarm=True)
        if opened.header.sender != peer:
            state = None
        return self._in_sequence(opened, digest, now, state, ahead)

    def _in_sequence(self, opened: envelope.OpenedEnvelope, digest: bytes, now: int,
                     state: InboundState | None = None, ahead: Ahead | None = None
                     ) -> Answer:
        """An authenticated envelope, classified by the link rules (PROTOCOL.md §8.2).
        ``state`` is the link's, if the caller read it in this same call on the database
        thread (nothing else writes the inbox in between)."""
        header = opened.header
        peer = header.sender
        if state is None:
            state = self.e.store.inbound_state(peer)
        verdict = link.classify(state, seq=header.seq, prev=header.prev, digest=digest,
                                lookup=lambda s: self.e.store.inbox_entry(peer, s))
        if isinstance(verdict, link.Duplicate):
            return Answer(outcome=Outcome.DUPLICATE,
                          body=transport.resign(verdict.receipt, self.e.trust.me))
        if isinstance(verdict, link.Gap):
            return self._reject(Outcome.OUT_OF_SEQUENCE, header, peer, digest, "gap",
                                f"expected sequence {verdict.expected_seq}, got {verdict.got_seq}",
                                now, expected_seq=verdict.expected_seq, record=False)
        if isinstance(verdict, link.Equivocation):
            self.keys.honour_revocation(peer, opened, now)
            return self._reject(Outcome.OUT_OF_SEQUENCE, header, peer, digest, "equivocation",
                                verdict.why, now, alarm=True, expected_seq=state.expected_seq)
        return self._accept(opened, digest, now, ahead)

    def open_ahead(self, data: bytes, parsed: Parsed | PeerError) -> bytes | None:
        """The payload of a chunk envelope from a pinned peer to us, opened beside the database
        thread so that its pure work can be done before its turn (``chunk_ahead``); None
        for any other envelope, or if opening it fails. Decides
        nothing: on its turn the envelope is opened again and checked as any other, and this
        payload is used only if it is byte for byte what that opens. Any thread."""
        if isinstance(parsed, PeerError) or parsed[0].kind != KIND_CHUNK:
            return None
        header, trust = parsed[0], self.e.trust
        if not (trust.is_pinned(header.sender) and trust.is_for_us(header.recipient_key)):
            return None
        try:
            return envelope.open_parsed(trust.own, trust.keyring, data, parsed).payload
        except Exception:  # whatever it is, the envelope's own turn finds it and says why
            return None

    def _answer(self, header: envelope.EnvelopeHeader | None, digest: bytes, now: int,
                result: str, reason: str | None, expected_seq: int | None = None) -> bytes:
        return self._start_answer(header, digest, now, result, reason, expected_seq,
                                  beside=inline).result()

    def _start_answer(self, header: envelope.EnvelopeHeader | None, digest: bytes, now: int,
                      result: str, reason: str | None, expected_seq: int | None = None, *,
                      beside: Beside | None = None) -> Pending[bytes]:
        """The signed transport answer, the slow half of its signature made ``beside`` (the
        engine's, unless told)."""
        me = self.e.trust.me
        return transport.start_answer(me, transport.TransportAnswer(
            sender=header.sender if header else None, recipient=me.party, by_key=me.key_id,
            envelope=digest, message_id=header.message_id if header else None,
            seq=header.seq if header else None, at=now, result=result, reason=reason,
            expected_seq=expected_seq), beside or self.e.beside)

    # ------------------------------------------------------------ refusals

    def _reject(self, outcome: Outcome, header: envelope.EnvelopeHeader | None,
                peer: str | None, digest: bytes, reason: str, detail: str, now: int, *,
                alarm: bool = False, expected_seq: int | None = None,
                record: bool = True) -> Answer:
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
            with self.e.store.transaction():
                self._record_refusal(peer=peer, seq=header.seq if header else None,
                                     digest=digest, reason=reason, detail=detail, alarm=alarm,
                                     now=now, count=admitted.count, source=source)
                if alarm:
                    self.e.store.add_event("security_alarm", {"peer": peer, "reason": reason,
                                                              "detail": detail}, now)
            self.e.notify()
            log.warning("refused envelope from %s: %s (%s)", peer or "unknown", reason,
                        "see refusals" if reason == "unauthenticated" else detail)
        # The signed rejection names only what the sender could already know.
        body = self._answer(header if peer else None, digest, now, "rejected", reason,
                            expected_seq)
        return Answer(outcome=outcome, body=body, reason=reason)

    def record_limit_refusal(self, *, reason: str, detail: str, count: int = 1,
                             source: str = UNAUTHENTICATED_SOURCE) -> None:
        """``count`` requests the peer endpoint refused at one of its limits (too large, too
        slow, over the rate, not an envelope's content type) before they came here, from
        ``source`` (an address, or the pinned peer a request claims to be from).
        Unauthenticated, so no peer is named; the caller has asked ``refusal_gate`` already."""
        now = self.e.now()
        try:
            with self.e.store.transaction():
                self._record_refusal(peer=None, seq=None, digest=None, reason=reason,
                                     detail=detail, alarm=False, now=now, count=count,
                                     source=source)
        except StoreUnavailable as exc:
            # The refusal stands (it needs no store); only its record is lost.
            self.e.guard.unavailable(exc)
            return
        self.e.notify()

    def _record_refusal(self, *, peer: str | None, seq: int | None, digest: bytes | None,
                        reason: str, detail: str, alarm: bool, now: int, count: int = 1,
                        source: str | None = None) -> None:
        """A refusal row (or ``count`` more on its coalesced row), and the audit record of
        each new row (in the caller's transaction)."""
        if self.e.store.record_refusal(peer=peer, seq=seq, digest=digest, reason=reason,
                                       detail=detail, alarm=alarm, now=now, count=count,
                                       source=source):
            self.e.audit(audit.REFUSAL, peer, audit.refusal_body(
                direction="in", seq=seq, digest=digest, reason=reason, detail=detail,
                alarm=alarm), now)

    # ------------------------------------------------------------ taking it into the chain

    def _accept(self, opened: envelope.OpenedEnvelope, digest: bytes, now: int,
                ahead: Ahead | None = None) -> Answer:
        header = opened.header
        chunk: chunks.ReceivedChunk | None = None
        parsed: object = None
        after: AfterCommit | None = None
        handler = self.kinds.get(header.kind)
        try:
            if handler is None:
                raise PeerError(f"unknown envelope kind {header.kind!r}", reason="unknown_kind")
            refuse_ahead("envelope at", header.sent_at, now)
            # Authenticated and in sequence: the receipt says "accepted" unless the content is
            # refused below. Its signature (an ML-DSA one is most of this step's cost) is made
            # beside the parsing and applying, and joined for the inbox row; nothing is visible
            # before the commit that stores them together. Refused, it is never used.
            # The audit records keep their order (the envelope's and its receipt's before
            # the content's), so the join comes before ``apply``.
            signing = self._start_answer(header, digest, now, "accepted", None)
            prepared = (ahead.for_payload(opened.payload)
                        if ahead is not None and header.kind == KIND_CHUNK else None)
            parsed = prepared if prepared is not None else handler.parse(opened.payload)
            if isinstance(parsed, PreparedChunk):
                chunk = parsed.chunk
            if handler.check is not None:
                handler.check(header.sender, parsed, now)
            with self.e.store.transaction():
                receipt = signing.result()
                self._take(opened, digest, chunk, "accepted", None, receipt, now)
                after = handler.apply(header.sender, opened.payload, parsed, header.seq, now)
        except StoreUnavailable:
            raise  # not the content's fault: nothing is recorded, the sender retries
        except StoreCorrupt:  # our fault, found while applying it: not the peer's to answer for
            self.e.guard.save_alarms()
            return self._unavailable(digest, now)
        except BridgeError as exc:
            return self._refuse_content(opened, digest, chunk, exc, now,
                                        handler=handler, parsed=parsed)
        if after is not None:
            # Committed: only now does state outside the store change (the key files), so a
            # rollback leaves them as they were and the store and the files never disagree.
            after()
        self.e.notify()
        return Answer(outcome=Outcome.ACCEPTED, body=receipt)

    def _refuse_content(self, opened: envelope.OpenedEnvelope, digest: bytes,
                        chunk: chunks.ReceivedChunk | None, exc: BridgeError, now: int, *,
                        handler: KindHandler | None = None, parsed: object = None) -> Answer:
        """Authenticated, in sequence, but its content is refused: the envelope still takes
        its place in the chain (so later ones are not blocked), with a signed refusal."""
        header = opened.header
        peer = header.sender
        reason = exc.code if isinstance(exc, PeerError) else "invalid_content"
        receipt = self._answer(header, digest, now, "refused", reason)
        with self.e.store.transaction():
            self._take(opened, digest, chunk, "refused", reason, receipt, now)
            self._record_refusal(peer=peer, seq=header.seq, digest=digest, reason=reason,
                                 detail=str(exc), alarm=True, now=now)
            self.e.store.add_event("document_refused", {"peer": peer, "reason": reason,
                                                        "detail": str(exc)}, now)
            if handler is not None and handler.refused is not None:
                handler.refused(peer, exc, parsed, now)  # its evidence, with the refusal
        self.e.notify()
        log.warning("refused content of envelope %d from %s: %s", header.seq, peer, exc)
        return Answer(outcome=Outcome.REFUSED, body=receipt, reason=reason)

    def _take(self, opened: envelope.OpenedEnvelope, digest: bytes,
              chunk: chunks.ReceivedChunk | None, result: str, reason: str | None,
              receipt: bytes, now: int) -> None:
        """An envelope taken into the chain (the inbox row), with its audit records: the
        envelope and the transport receipt we issued for it."""
        header = opened.header
        peer = header.sender
        header_bytes = codec.encode(header.to_map())
        self.e.store.insert_inbox(peer=peer, seq=header.seq, msg_id=header.message_id,
                                  digest=digest, header=header_bytes, kind=header.kind,
                                  result=result, receipt=receipt, now=now)
        self.e.audit(audit.ENVELOPE_RECEIVED, peer, audit.envelope_body(
            header, header_bytes, digest, doc=chunk.signed.digest if chunk else None,
            first=chunk.first if chunk else None, n=len(chunk.entries) if chunk else None,
            result=result, sig=opened.signature, ct_hash=opened.ciphertext_hash), now)
        self.e.audit(audit.RECEIPT_ISSUED, peer, audit.receipt_body(
            seq=header.seq, envelope=digest, result=result, reason=reason, receipt=receipt), now)
