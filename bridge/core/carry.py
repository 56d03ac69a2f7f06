"""The offline carrier file (PROTOCOL.md §12): envelopes, or the transport answers to them, in
one file that a delegate carries from one party to the other when there is no network.

Byte layout (every integer big-endian; §12.2 states it for implementers)::

    file    = prefix header record* footer
    prefix  = MAGIC (12) | version u8 (1) | kind u8 (1 envelopes, 2 answers) | header_len u16
    header  = header_len bytes: a canonical map {created, from, from_key, kind, to, to_key}
    record  = 0x52 'R' | seq u64 | envelope (32) | length u32 | body (length bytes)
    footer  = 0x45 'E' | count u64 | digest (32): SHA-256 of every byte before it

An envelope record's ``envelope`` is the SHA-256 of its body (the envelope's chain hash, §5.1);
an answer record's is the hash of the envelope it answers (a routing hint: the signed answer
decides, §8.3). The file carries no signature of its own: every envelope and every answer is
signed by its sender, and the footer only tells a damaged or cut file from a whole one.

Reading is sans I/O (``Reader``): the caller asks how many bytes come next (``need``), hands
them over (``take``) and gets events back. Every read is bounded before it is made (a record
longer than ``CarryLimits.max_record_bytes`` is refused by its length field), so memory never
depends on what the file declares, only on one record at a time.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bridge.core import codec
from bridge.core.crypto.hashes import new_sha256, sha256
from bridge.core.crypto.identity import check_party
from bridge.core.errors import BridgeError, DecodeError, PeerError, UsageError

MAGIC = b"\x89BRCARRY\r\n\x1a\n"  # as PNG's: a high bit, CR LF, ^Z and LF catch mangling
VERSION = 1
MEDIA_TYPE = "application/vnd.bridge.carry"
TAG_RECORD = 0x52  # 'R'
TAG_END = 0x45  # 'E'
_PREFIX = struct.Struct(">12sBBH")
_RECORD = struct.Struct(">BQ32sI")  # tag, seq, envelope, length; the body follows
_FOOTER = struct.Struct(">BQ")  # tag, count; the digest follows
DIGEST_SIZE = 32
HEADER_KEYS = frozenset({"created", "from", "from_key", "kind", "to", "to_key"})
MAX_HEADER_BYTES = 1024
SEQ_MAX = 2**63 - 1  # as an envelope's seq (PROTOCOL §3 "Ranges")


class FileKind(enum.IntEnum):
    """What a carrier file holds."""

    ENVELOPES = 1  # sealed envelopes from ``from`` to ``to``
    ANSWERS = 2  # the signed transport answers ``from`` gave to ``to``'s envelopes

    @property
    def label(self) -> str:
        return "envelopes" if self is FileKind.ENVELOPES else "answers"


@dataclass(frozen=True, kw_only=True)
class CarryLimits:
    """Hard bounds on what one carrier file may make a reader do."""

    max_file_bytes: int = 2 * 1024**3
    max_records: int = 100_000
    max_record_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_records", "max_record_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise UsageError(f"carry limit {name} must be a positive integer")


@dataclass(frozen=True, kw_only=True)
class CarryHeader:
    """Who the file is from and for, by party and key id, and when it was written."""

    kind: FileKind
    sender: str
    sender_key: bytes
    recipient: str
    recipient_key: bytes
    created: int  # milliseconds since the Unix epoch, UTC

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FileKind):
            raise UsageError("a carrier file's kind is a FileKind")
        check_party(self.sender, field_name="from")
        check_party(self.recipient, field_name="to")
        for name in ("sender_key", "recipient_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise UsageError(f"{name} must be 32 bytes")
        if type(self.created) is not int or not 0 <= self.created <= SEQ_MAX:
            raise UsageError("created must be a non-negative integer of milliseconds")

    def to_map(self) -> dict[str, object]:
        return {"created": self.created, "from": self.sender, "from_key": self.sender_key,
                "kind": self.kind.label, "to": self.recipient, "to_key": self.recipient_key}

    def encode(self) -> bytes:
        """The prefix and the header: the first bytes of the file."""
        body = codec.encode(self.to_map())
        return _PREFIX.pack(MAGIC, VERSION, int(self.kind), len(body)) + body


@dataclass(frozen=True, kw_only=True)
class Record:
    seq: int
    envelope: bytes
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if type(self.seq) is not int or not 1 <= self.seq <= SEQ_MAX:
            raise UsageError("a record's seq is an integer from 1 to 2**63-1")
        if not isinstance(self.envelope, bytes) or len(self.envelope) != DIGEST_SIZE:
            raise UsageError("a record's envelope hash is 32 bytes")
        if not isinstance(self.body, bytes) or not self.body:
            raise UsageError("a record's body is non-empty bytes")

    def encode(self) -> bytes:
        return _RECORD.pack(TAG_RECORD, self.seq, self.envelope, len(self.body)) + self.body


def envelope_record(seq: int, data: bytes) -> Record:
    """The record of one of our envelopes: its hash is its chain hash (PROTOCOL §5.1)."""
    return Record(seq=seq, envelope=sha256(data), body=data)


class Writer:
    """Encodes a carrier file piece by piece, hashing as it goes (the footer's digest)."""

    def __init__(self, header: CarryHeader) -> None:
        self.header = header
        self.count = 0
        self._hash = new_sha256()

    def _out(self, data: bytes) -> bytes:
        self._hash.update(data)
        return data

    def start(self) -> bytes:
        return self._out(self.header.encode())

    def record(self, record: Record) -> bytes:
        self.count += 1
        return self._out(record.encode())

    def finish(self) -> bytes:
        end = self._out(_FOOTER.pack(TAG_END, self.count))
        return end + self._hash.digest()


def encode_file(header: CarryHeader, records: Iterable[Record]) -> bytes:
    """A whole carrier file in memory (tests and vectors; the daemon streams a ``Writer``)."""
    w = Writer(header)
    return w.start() + b"".join(w.record(r) for r in records) + w.finish()


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, kw_only=True)
class HeaderRead:
    header: CarryHeader


@dataclass(frozen=True, kw_only=True)
class RecordRead:
    record: Record


@dataclass(frozen=True, kw_only=True)
class RecordRefused:
    """One record the file holds that is not passed on: nothing of it is applied."""

    seq: int | None
    envelope: bytes | None
    reason: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class Finished:
    """The footer was found, and it holds: the file is whole."""

    count: int


@dataclass(frozen=True, kw_only=True)
class Broken:
    """Nothing after this point can be read (a cut or mangled file): the records passed on
    before it stand, each on its own signature."""

    reason: str
    detail: str


Event = HeaderRead | RecordRead | RecordRefused | Finished | Broken


class _At(enum.Enum):
    PREFIX = "prefix"
    HEADER = "header"
    TAG = "tag"
    RECORD = "record"
    BODY = "body"
    FOOTER = "footer"
    DIGEST = "digest"
    TRAILER = "trailer"
    DONE = "done"


@dataclass
class _Pending:
    seq: int = 0
    envelope: bytes = b""


class Reader:
    """A sans-I/O reader of one carrier file. Loop: ``n = need()``; read up to ``n`` bytes;
    ``take(them)``; until ``need()`` is 0. Fewer bytes than asked means the file ended."""

    def __init__(self, limits: CarryLimits | None = None,
                 kind: FileKind | None = None) -> None:
        self.limits = limits or CarryLimits()
        self.kind = kind  # the kind expected, or any
        self.header: CarryHeader | None = None
        self.count = 0
        self.size = 0
        self._at = _At.PREFIX
        self._need = _PREFIX.size
        self._hash = new_sha256()
        self._last_seq = 0
        self._last_envelope = b""
        self._pending = _Pending()
        self._prefix_kind = 0

    def need(self) -> int:
        return 0 if self._at is _At.DONE else self._need

    def take(self, data: bytes) -> list[Event]:
        if self._at is _At.DONE:
            raise UsageError("the carrier file was read to its end already")
        self.size += len(data)
        if self.size > self.limits.max_file_bytes:
            return self._broken("file_too_large",
                                f"the file is over {self.limits.max_file_bytes} bytes")
        if self._at is _At.TRAILER:
            if data:
                return self._broken("trailing_bytes", "bytes follow the footer")
            self._at = _At.DONE
            return [Finished(count=self.count)]
        if len(data) < self._need:
            where = (f"after {self.count} records, before its footer"
                     if self._at is _At.TAG and not data else f"inside its {self._at.value}"
                     + (f" (record {self.count})" if self.count else ""))
            return self._broken("truncated", f"the file ends {where}")
        if self._at is not _At.DIGEST:
            self._hash.update(data)
        try:
            return self._step(data)
        except PeerError as exc:
            return self._broken(exc.reason, str(exc))

    def _broken(self, reason: str, detail: str) -> list[Event]:
        self._at = _At.DONE
        return [Broken(reason=reason, detail=detail)]

    def _go(self, at: _At, need: int) -> None:
        self._at, self._need = at, need

    def _step(self, data: bytes) -> list[Event]:
        at = self._at
        if at is _At.PREFIX:
            return self._prefix(data)
        if at is _At.HEADER:
            self.header = parse_header(data, self.kind)
            if int(self.header.kind) != self._prefix_kind:
                raise DecodeError("the prefix and the header name different kinds",
                                  reason="bad_header")
            self._go(_At.TAG, 1)
            return [HeaderRead(header=self.header)]
        if at is _At.TAG:
            return self._tag(data[0])
        if at is _At.RECORD:
            return self._record_head(data)
        if at is _At.BODY:
            return self._body(data)
        if at is _At.FOOTER:
            _, count = _FOOTER.unpack(b"\x00" + data)
            if count != self.count:
                raise PeerError(f"the footer counts {count} records, the file holds "
                                f"{self.count}", reason="count_mismatch")
            self._go(_At.DIGEST, DIGEST_SIZE)
            return []
        assert at is _At.DIGEST
        if data != self._hash.digest():
            raise PeerError("the footer's SHA-256 does not match the file: it was damaged",
                            reason="file_digest_mismatch")
        self._go(_At.TRAILER, 1)
        return []

    def _prefix(self, data: bytes) -> list[Event]:
        magic, version, kind, header_len = _PREFIX.unpack(data)
        if magic != MAGIC:
            raise PeerError("not a Bridge carrier file (its first bytes are not the magic)",
                            reason="bad_magic")
        if version != VERSION:
            raise PeerError(f"carrier file version {version}; this bridge reads {VERSION}",
                            reason="unsupported_version")
        if kind not in tuple(FileKind):
            raise PeerError(f"unknown carrier file kind {kind}", reason="bad_header")
        if not 0 < header_len <= MAX_HEADER_BYTES:
            raise PeerError(f"a header of {header_len} bytes", reason="bad_header")
        self._prefix_kind = kind
        self._go(_At.HEADER, header_len)
        return []

    def _tag(self, tag: int) -> list[Event]:
        if tag == TAG_END:
            self._go(_At.FOOTER, _FOOTER.size - 1)
        elif tag == TAG_RECORD:
            if self.count >= self.limits.max_records:
                raise PeerError(f"more than {self.limits.max_records} records",
                                reason="too_many_records")
            self._go(_At.RECORD, _RECORD.size - 1)
        else:
            raise PeerError(f"byte 0x{tag:02x} where a record or the footer begins",
                            reason="bad_tag")
        return []

    def _record_head(self, data: bytes) -> list[Event]:
        _, seq, env, length = _RECORD.unpack(b"\x00" + data)
        self.count += 1
        if not 0 < length <= self.limits.max_record_bytes:
            raise PeerError(f"record {self.count} declares {length} bytes (at most "
                            f"{self.limits.max_record_bytes})", reason="record_too_large")
        self._pending = _Pending(seq=seq, envelope=env)
        self._go(_At.BODY, length)
        return []

    def _body(self, body: bytes) -> list[Event]:
        seq, env = self._pending.seq, self._pending.envelope
        self._go(_At.TAG, 1)
        why = self._refusal(seq, env, body)
        if why is not None:
            return [RecordRefused(seq=seq if 1 <= seq <= SEQ_MAX else None, envelope=env,
                                  reason=why[0], detail=why[1])]
        self._last_seq, self._last_envelope = seq, env
        return [RecordRead(record=Record(seq=seq, envelope=env, body=body))]

    def _refusal(self, seq: int, env: bytes, body: bytes) -> tuple[str, str] | None:
        """Why this record is not passed on, or None. The order of the file is its
        sender's sequence order: each record after the one before (PROTOCOL §12.3)."""
        assert self.header is not None
        if not 1 <= seq <= SEQ_MAX:
            return "bad_record", f"record {self.count}: sequence number {seq} out of range"
        if self.header.kind is FileKind.ENVELOPES and sha256(body) != env:
            return "record_damaged", (f"record {self.count} (envelope {seq}): its bytes do not "
                                      "hash to the hash it names")
        if seq == self._last_seq:
            return "duplicate_record", f"record {self.count}: envelope {seq} a second time"
        if seq < self._last_seq:
            return "out_of_order", (f"record {self.count}: envelope {seq} after "
                                    f"{self._last_seq}")
        return None


class Feeder:
    """A ``Reader`` fed with pieces of any size (a network stream): it keeps at most the one
    record being read. ``close`` is the end of the stream."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._buf = bytearray()

    def push(self, data: bytes) -> list[Event]:
        self._buf += data
        out: list[Event] = []
        while (n := self.reader.need()) and len(self._buf) >= n:
            piece = bytes(self._buf[:n])
            del self._buf[:n]
            out += self.reader.take(piece)
        if not self.reader.need():
            self._buf.clear()  # read to its end, or broken: nothing more is looked at
        return out

    def close(self) -> list[Event]:
        out: list[Event] = []
        while self.reader.need():
            piece = bytes(self._buf[:self.reader.need()])
            del self._buf[:len(piece)]
            out += self.reader.take(piece)
        return out


def read_all(data: bytes, limits: CarryLimits | None = None,
             kind: FileKind | None = None) -> list[Event]:
    """Every event of a carrier file held in memory (tests, vectors)."""
    feeder = Feeder(Reader(limits, kind))
    return feeder.push(data) + feeder.close()


def parse_header(data: bytes, kind: FileKind | None = None) -> CarryHeader:
    """The header map, strictly (canonical, exactly its keys, the prefix's kind)."""
    value = codec.decode(data, codec.SMALL_LIMITS)
    if not isinstance(value, dict) or set(value) != HEADER_KEYS:
        raise DecodeError("the header is a map with exactly the keys "
                          + ", ".join(sorted(HEADER_KEYS)), reason="bad_header")
    by_label = {k.label: k for k in FileKind}
    if value["kind"] not in by_label:
        raise DecodeError("the header's kind is envelopes or answers", reason="bad_header")
    found = by_label[value["kind"]]
    if kind is not None and found is not kind:
        raise PeerError(f"a carrier file of {found.label}, where one of {kind.label} is "
                        "expected", reason="wrong_kind")
    try:
        return CarryHeader(kind=found, sender=value["from"], sender_key=value["from_key"],
                           recipient=value["to"], recipient_key=value["to_key"],
                           created=value["created"])
    except BridgeError as exc:
        raise DecodeError(f"the header: {exc}", reason="bad_header") from exc


def check_header(header: CarryHeader, kind: FileKind, *, me: str, own_keys: Iterable[bytes],
                 peer_keys: Mapping[bytes, str]) -> None:
    """Refuse (``PeerError``) a file that is not of ``kind``, not for party ``me`` by one of
    ``own_keys``, or not from a key ``peer_keys`` (key id to pinned party) names for its sender
    (PROTOCOL §12.4). Nothing in such a file is read further: each of its envelopes would be
    refused anyway (unsealable, or from no pinned peer), and the operator is told why at once."""
    if header.kind is not kind:
        raise PeerError(f"this is a file of {header.kind.label}, not of {kind.label}",
                        reason="wrong_kind")
    if header.recipient != me or header.recipient_key not in set(own_keys):
        raise PeerError(f"the file is for {header.recipient}, not for {me} (or for a key of "
                        "ours it does not name)", reason="wrong_recipient")
    if header.sender not in set(peer_keys.values()):
        raise PeerError(f"the file is from {header.sender}, who is not a pinned peer",
                        reason="unknown_sender")
    if peer_keys.get(header.sender_key) != header.sender:
        raise PeerError(f"the file is from a key of {header.sender} that is not pinned",
                        reason="unknown_sender_key")


def record_names_other(header: CarryHeader, record: Record, *, sender: str, recipient: str,
                       seq: int) -> str | None:
    """Why an envelope (its unauthenticated header: ``sender``, ``recipient``, ``seq``) does
    not belong in its record of this file, or None. Checked before the engine sees it, so a
    file cannot smuggle another link's envelope under its own names."""
    if sender != header.sender or recipient != header.recipient:
        return f"envelope {seq} is from {sender} to {recipient}, not as the file says"
    if seq != record.seq:
        return f"the record says envelope {record.seq}, the envelope says {seq}"
    return None


__all__ = [
    "MAGIC",
    "MEDIA_TYPE",
    "VERSION",
    "Broken",
    "CarryHeader",
    "CarryLimits",
    "Event",
    "Feeder",
    "FileKind",
    "Finished",
    "HeaderRead",
    "Reader",
    "Record",
    "RecordRead",
    "RecordRefused",
    "Writer",
    "check_header",
    "encode_file",
    "envelope_record",
    "parse_header",
    "read_all",
    "record_names_other",
]
