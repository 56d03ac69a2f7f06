"""The relay binding (PROTOCOL.md, "Relay binding"): the names both sides of the mediator's
broker agree on, and the checks of what comes off it. Pure: no NATS here, so the mediator's
server configuration and the party's courier derive every subject, stream, consumer and
permission from these functions alone, and cannot disagree.

- An envelope or an answer *to* party R *from* party S travels on ``bridge.v1.R.S`` (the
  recipient first, so that one stream per recipient captures ``bridge.v1.R.>``).
- Party R's stream is ``BRIDGE_R`` (stream names may not hold ``.``), its one durable pull
  consumer ``R``, its reply inbox prefix ``_INBOX_R``.
- Headers: ``Nats-Msg-Id`` (the hex SHA-256 of the body: the broker drops a second publish of
  the same bytes within its duplicate window), ``Bridge-Kind`` (``envelope`` or ``answer``), and
  on an answer ``Bridge-Seq`` and ``Bridge-Envelope``: routing hints only, the engine decides
  on the signed answer alone (PROTOCOL §8.3).
- A party's client reads its credential file with ``nkeys.read_seed`` and connects with
  nats-py's ``nkeys_seed_str=`` (its ``nkeys_seed=`` takes a file holding a bare seed, not the
  standard block), with ``inbox_prefix`` set to ``inbox_prefix(party)``; it has no right to
  ``$JS.API.INFO`` (see ``party_permissions``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bridge.core.crypto.hashes import sha256
from bridge.core.crypto.identity import check_party
from bridge.core.errors import InputError, PeerError

SUBJECT_ROOT = "bridge.v1"  # the binding's version is the protocol's (PROTOCOL §1)
# The witness's tlog-witness exchange (PROTOCOL §13.8): core NATS request/reply, never stored
# (no stream captures ``bridge.witness.>``: a checkpoint is for a witness that answers now).
WITNESS_ROOT = "bridge.witness.v1"
WITNESS_OP = "add-checkpoint"  # the HTTP binding's path, as the subject's last token
STREAM_PREFIX = "BRIDGE_"
INBOX_PREFIX = "_INBOX_"

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_KIND = "Bridge-Kind"
HEADER_SEQ = "Bridge-Seq"
HEADER_ENVELOPE = "Bridge-Envelope"
BRIDGE_HEADERS = frozenset({HEADER_KIND, HEADER_SEQ, HEADER_ENVELOPE})
# A witness's answer: the HTTP status code and Content-Type it would have sent (§13.8).
HEADER_STATUS = "Bridge-Status"
HEADER_CONTENT_TYPE = "Content-Type"

# Room for the headers above (and the broker's own) on top of the largest body: a stream's
# max_msg_size and the server's max_payload are the largest envelope plus this.
HEADER_ALLOWANCE = 1024

# A party name that is the mediator's own (its admin credential file is named after it):
# never a party's, so that no party's credential file can be the admin's.
ADMIN_NAME = "mediator-admin"

# The refusal reasons of messages off the broker ([a-z][a-z0-9_]{0,63}, PROTOCOL §8.3).
REASON_SUBJECT = "bad_relay_subject"
REASON_HEADER = "bad_relay_header"
REASON_KIND = "bad_relay_kind"
REASON_MSG_ID = "bad_msg_id"
REASON_TOO_LARGE = "too_large"

_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_DECIMAL = re.compile(r"^[1-9][0-9]{0,18}\Z")
_MAX_SEQ = 2**63 - 1


class Kind(enum.StrEnum):
    """What a message on the relay carries: the bytes of the HTTP binding's request body, or
    those of its answer (PROTOCOL §8.4)."""

    ENVELOPE = "envelope"
    ANSWER = "answer"


def party_token(name: str) -> str:
    """``name`` as a subject token: a Bridge party name (PROTOCOL §4.1), which holds none of
    NATS's separators or wildcards (``.``, ``*``, ``>``, white space), and never the mediator's
    own name. Refused with an ``InputError`` naming the party otherwise."""
    check_party(name)
    if name == ADMIN_NAME:
        raise InputError(f"{ADMIN_NAME!r} is the mediator's own name, not a party's",
                         field="party")
    return name


def subject(recipient: str, sender: str) -> str:
    """The subject of an envelope or answer to ``recipient`` from ``sender``."""
    return f"{SUBJECT_ROOT}.{party_token(recipient)}.{party_token(sender)}"


def inbound_subjects(party: str) -> str:
    """Every subject toward ``party``: what its stream captures."""
    return f"{SUBJECT_ROOT}.{party_token(party)}.>"


def stream_name(party: str) -> str:
    return f"{STREAM_PREFIX}{party_token(party)}"


def consumer_name(party: str) -> str:
    return party_token(party)


def inbox_prefix(party: str) -> str:
    """The party's client sets this as its inbox prefix: replies and PubAcks come to its own
    inbox only, and it may subscribe to nothing else."""
    return f"{INBOX_PREFIX}{party_token(party)}"


def witness_subject(witness: str) -> str:
    """Where a party sends ``add-checkpoint`` requests to the witness named ``witness`` (the
    party name in its identity file) and the witness listens: one subject per witness."""
    return f"{WITNESS_ROOT}.{party_token(witness)}.{WITNESS_OP}"


def msg_id(body: bytes) -> str:
    """``Nats-Msg-Id`` of a body: the lowercase hex SHA-256 of its bytes. The same bytes sent
    again (a retry) carry the same id, so the broker keeps one copy within its window."""
    return sha256(body).hex()


def envelope_headers(body: bytes) -> dict[str, str]:
    return {HEADER_MSG_ID: msg_id(body), HEADER_KIND: Kind.ENVELOPE.value}


def answer_headers(body: bytes, *, seq: int | None, envelope: bytes) -> dict[str, str]:
    """Headers of an answer to the envelope whose hash (PROTOCOL §5.4) is ``envelope``, of
    sequence number ``seq`` (None when the answer names none: a rejection of bytes that were
    not authenticated)."""
    if len(envelope) != 32:
        raise InputError("an envelope hash is 32 bytes", field="envelope")
    headers = {HEADER_MSG_ID: msg_id(body), HEADER_KIND: Kind.ANSWER.value,
               HEADER_ENVELOPE: envelope.hex()}
    if seq is not None:
        if not 1 <= seq <= _MAX_SEQ:
            raise InputError("a sequence number is in [1, 2^63-1]", field="seq")
        headers[HEADER_SEQ] = str(seq)
    return headers


@dataclass(frozen=True, kw_only=True)
class Permissions:
    """What one party's credentials allow (deny by default): NATS subjects it may publish to
    and subscribe to. ``peers`` are the parties it is paired with."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


    # Refused even where nothing above allows it: the shared inbox root of NATS clients
    # that set no prefix, where replies meant for anyone else would be read.
    subscribe_deny: tuple[str, ...] = ()
    # A witness answers on the reply subject of the request it received, and nowhere else.
    allow_responses: bool = False


def party_permissions(party: str, peers: Iterable[str],
                      witnesses: Iterable[str] = ()) -> Permissions:
    """Publish only toward each peer's inbound subject from ``party`` (never as another
    sender), to each witness's request subject, and to exactly the JetStream API subjects
    that pull from its own consumer and ack what it pulled; subscribe only to its own inbox
    (where the witness's answers come too: no party reads another's). No right to create,
    delete, purge or list anything, nor to read another stream. Not even ``$JS.API.INFO``:
    the account's totals (streams, consumers, bytes stored) would tell one party how much the
    others exchange."""
    stream, consumer = stream_name(party), consumer_name(party)
    names = sorted(set(peers))
    if party in names:
        raise InputError("a party is not its own peer", field="peer")
    own = [subject(peer, party) for peer in names]
    return Permissions(
        publish=(*own,
                 *(witness_subject(w) for w in sorted(set(witnesses))),
                 f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
                 f"$JS.API.CONSUMER.INFO.{stream}.{consumer}",
                 f"$JS.API.STREAM.INFO.{stream}",
                 f"$JS.ACK.{stream}.{consumer}.>"),
        subscribe=(f"{inbox_prefix(party)}.>",),
        subscribe_deny=("_INBOX.>",))


def witness_permissions(witness: str) -> Permissions:
    """The witness's user: it receives requests on its own subject only, and publishes
    nothing but its answer to each one (the broker's ``allow_responses``: one reply, to the
    reply subject of a request it was delivered). It reads no party's traffic."""
    return Permissions(publish=(), subscribe=(witness_subject(witness),),
                       subscribe_deny=("_INBOX.>",), allow_responses=True)


# ------------------------------------------------------------------ what comes off the broker


@dataclass(frozen=True, kw_only=True)
class RelayMessage:
    """A message's routing, checked: who it is to and from (its subject), what it carries, and
    for an answer the hints naming the envelope it answers. The body itself is for the engine
    to judge."""

    recipient: str
    sender: str
    kind: Kind
    seq: int | None = None
    envelope: bytes | None = None


def parse_subject(text: str, *, recipient: str) -> str:
    """The sender named by ``text``, a subject on ``recipient``'s stream (``PeerError``
    ``bad_relay_subject`` for any other shape)."""
    root, _, rest = text.rpartition(".")
    head, _, to = root.rpartition(".")
    if head != SUBJECT_ROOT or to != recipient:
        raise PeerError("a relay message's subject is not bridge.v1.RECIPIENT.SENDER",
                        reason=REASON_SUBJECT)
    try:
        return party_token(rest)
    except InputError:
        raise PeerError("a relay message's subject names no party as its sender",
                        reason=REASON_SUBJECT) from None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not isinstance(value, str) or not value:
        raise PeerError(f"a relay message has no {name} header", reason=REASON_HEADER)
    return value


def _answer_hints(headers: Mapping[str, str]) -> tuple[int | None, bytes]:
    envelope = _header(headers, HEADER_ENVELOPE)
    if not _HEX64.match(envelope):
        raise PeerError(f"{HEADER_ENVELOPE} is not 64 lowercase hex digits",
                        reason=REASON_HEADER)
    seq_text = headers.get(HEADER_SEQ)
    if seq_text is None:
        return None, bytes.fromhex(envelope)
    if not isinstance(seq_text, str) or not _DECIMAL.match(seq_text) or int(seq_text) > _MAX_SEQ:
        raise PeerError(f"{HEADER_SEQ} is not a decimal in [1, 2^63-1]", reason=REASON_HEADER)
    return int(seq_text), bytes.fromhex(envelope)


def parse_message(subject_text: str, headers: Mapping[str, str] | None, body: bytes, *,
                  recipient: str, max_body_bytes: int) -> RelayMessage:
    """Check a message pulled from ``recipient``'s stream before its body is decoded: its
    size, its subject, its headers (the broker's own ``Nats-*`` headers are let be; an unknown
    ``Bridge-*`` header is refused), and that ``Nats-Msg-Id`` is the hash of the body (one
    that is not was not published by a bridge, or the body was changed). Raises ``PeerError``
    with one of the relay reasons."""
    if len(body) > max_body_bytes:
        raise PeerError(f"a relay message of {len(body)} bytes is over the limit of "
                        f"{max_body_bytes}", reason=REASON_TOO_LARGE)
    sender = parse_subject(subject_text, recipient=recipient)
    headers = headers or {}
    unknown = sorted(h for h in headers if h.lower().startswith("bridge-")
                     and h not in BRIDGE_HEADERS)
    if unknown:
        raise PeerError("a relay message has an unknown Bridge header", reason=REASON_HEADER)
    if _header(headers, HEADER_MSG_ID) != msg_id(body):
        raise PeerError(f"{HEADER_MSG_ID} is not the SHA-256 of the body", reason=REASON_MSG_ID)
    kind_text = _header(headers, HEADER_KIND)
    if kind_text not in {k.value for k in Kind}:
        raise PeerError(f"{HEADER_KIND} is neither envelope nor answer", reason=REASON_KIND)
    kind = Kind(kind_text)
    if kind is Kind.ENVELOPE:
        if HEADER_SEQ in headers or HEADER_ENVELOPE in headers:
            raise PeerError("an envelope carries no answer headers", reason=REASON_HEADER)
        return RelayMessage(recipient=recipient, sender=sender, kind=kind)
    seq, envelope = _answer_hints(headers)
    return RelayMessage(recipient=recipient, sender=sender, kind=kind, seq=seq,
                        envelope=envelope)


__all__ = [
    "ADMIN_NAME",
    "BRIDGE_HEADERS",
    "HEADER_ALLOWANCE",
    "HEADER_CONTENT_TYPE",
    "HEADER_ENVELOPE",
    "HEADER_KIND",
    "HEADER_MSG_ID",
    "HEADER_SEQ",
    "HEADER_STATUS",
    "INBOX_PREFIX",
    "REASON_HEADER",
    "REASON_KIND",
    "REASON_MSG_ID",
    "REASON_SUBJECT",
    "REASON_TOO_LARGE",
    "STREAM_PREFIX",
    "SUBJECT_ROOT",
    "WITNESS_OP",
    "WITNESS_ROOT",
    "Kind",
    "Permissions",
    "RelayMessage",
    "answer_headers",
    "consumer_name",
    "envelope_headers",
    "inbound_subjects",
    "inbox_prefix",
    "msg_id",
    "parse_message",
    "parse_subject",
    "party_permissions",
    "party_token",
    "stream_name",
    "subject",
    "witness_permissions",
    "witness_subject",
]
