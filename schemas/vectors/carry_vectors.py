"""The offline carrier file's test vectors (PROTOCOL.md §12.6), written by ``generate.py``.

Every file is deterministic: the envelopes in it are stand-ins whose header and signature are
real and whose ciphertext is a fixed string of the right length (a carrier file is read
without opening an envelope; the receiving bridge opens it afterwards). Each vector states
what a reader must find; ``expected_of`` runs the implementation, and the generator refuses
to write a vector on which the two disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.core import carry, envelope
from bridge.core.carry import CarryHeader, FileKind, Record
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import PeerError

CREATED = 1_777_593_600_000  # 2026-05-01T00:00:00Z
EnvelopeMaker = Callable[..., Any]  # generate.stand_in_envelope


@dataclass(frozen=True, kw_only=True)
class CarryVector:
    name: str
    data: bytes
    reader: str  # the party that reads it
    tries: str
    records: list[tuple[int | None, str]]  # (seq, "read" or the reason it is refused)
    refused: str | None = None  # the whole file refused before any record: the reason
    problem: str | None = None  # the rest of the file unreadable: the reason


def _link(make: EnvelopeMaker, sender: PrivateIdentity, recipient: PrivateIdentity,
          n: int) -> list[Any]:
    out: list[Any] = []
    for seq in range(1, n + 1):
        out.append(make(sender, recipient, seq=seq,
                        prev=out[-1].hash if out else envelope.ZERO_HASH,
                        at=CREATED + seq * 1000, kind="chunk", payload=b"chunk %d" % seq,
                        whole=True))
    return out


def _wire(te: Any) -> bytes:
    return envelope.wire_bytes(te.header, te.ct, te.sig)


def _header(kind: FileKind, sender: PrivateIdentity, recipient: PrivateIdentity,
            recipient_key: bytes | None = None) -> CarryHeader:
    return CarryHeader(kind=kind, sender=sender.party, sender_key=sender.key_id,
                       recipient=recipient.party,
                       recipient_key=recipient_key or recipient.key_id, created=CREATED)


def _with_footer(header: CarryHeader, records: list[Record], count: int) -> bytes:
    """A file whose footer counts ``count`` records, its digest right for what it holds."""
    body = header.encode() + b"".join(r.encode() for r in records)
    body += bytes([carry.TAG_END]) + count.to_bytes(8, "big")
    return body + hashlib.sha256(body).digest()


def carry_vectors(make: EnvelopeMaker, alpha: PrivateIdentity, beta: PrivateIdentity,
                  mallory: PrivateIdentity) -> list[tuple[str, list[CarryVector]]]:
    link = _link(make, alpha, beta, 3)
    recs = [carry.envelope_record(i + 1, _wire(te)) for i, te in enumerate(link)]
    env = _header(FileKind.ENVELOPES, alpha, beta)
    whole = carry.encode_file(env, recs)
    answers = carry.encode_file(_header(FileKind.ANSWERS, beta, alpha), [
        Record(seq=i + 1, envelope=te.hash, body=te.receipt) for i, te in enumerate(link)])
    body2 = recs[1].encode()
    at2 = whole.index(body2)
    flipped = bytearray(whole)
    flipped[at2 + 45 + len(recs[1].body) // 2] ^= 0x01
    read3 = [(1, "read"), (2, "read"), (3, "read")]

    def v(name: str, data: bytes, tries: str, records: list[tuple[int | None, str]], *,
          reader: str = beta.party, refused: str | None = None,
          problem: str | None = None) -> CarryVector:
        return CarryVector(name=name, data=data, reader=reader, tries=tries, records=records,
                           refused=refused, problem=problem)

    valid = [
        v("001-three-envelopes", whole, "three envelopes from alpha-test, in order", read3),
        v("002-answers", answers, "beta-test's signed answers to them, to carry back", read3,
          reader=alpha.party),
        v("003-no-envelopes", carry.encode_file(env, []), "a file with nothing in it", []),
    ]
    invalid = [
        v("truncated", whole[:at2 + 45 + 10], "cut inside the second envelope",
          [(1, "read")], problem="truncated"),
        v("flipped-byte", bytes(flipped), "one bit flipped in the middle of envelope 2",
          [(1, "read"), (2, "record_damaged"), (3, "read")], problem="file_digest_mismatch"),
        v("wrong-recipient", carry.encode_file(_header(FileKind.ENVELOPES, alpha, mallory),
                                               recs),
          "the file names mallory-test as its recipient, beta-test reads it", [],
          refused="wrong_recipient"),
        v("unknown-sender", carry.encode_file(_header(FileKind.ENVELOPES, mallory, beta), []),
          "from mallory-test, whom beta-test does not pin", [], refused="unknown_sender"),
        v("count-mismatch", _with_footer(env, recs, 4),
          "the footer counts 4 records, the file holds 3", read3, problem="count_mismatch"),
        v("duplicate-envelope", carry.encode_file(env, [recs[0], recs[1], recs[1], recs[2]]),
          "envelope 2 twice in a row",
          [(1, "read"), (2, "read"), (2, "duplicate_record"), (3, "read")]),
        v("out-of-order", carry.encode_file(env, [recs[0], recs[2], recs[1]]),
          "envelope 3 before envelope 2", [(1, "read"), (3, "read"), (2, "out_of_order")]),
        v("record-mismatch", carry.encode_file(env, [
            Record(seq=7, envelope=recs[0].envelope, body=recs[0].body)]),
          "a record that says envelope 7 holds envelope 1", [(7, "record_mismatch")]),
        v("trailing-bytes", whole + b"\x00", "a byte after the footer", read3,
          problem="trailing_bytes"),
        v("bad-magic", b"\x89BRCARRX" + whole[8:], "not the magic", [], refused="bad_magic"),
    ]
    return [("valid", valid), ("invalid", invalid)]


def expected_of(data: bytes, reader: PrivateIdentity, pins: dict[bytes, str]
                ) -> dict[str, Any]:
    """What the implementation finds in ``data``, read by ``reader`` pinning ``pins``."""
    records: list[tuple[int | None, str]] = []
    out: dict[str, Any] = {"refused": None, "problem": None, "complete": False}
    header: CarryHeader | None = None
    for event in carry.read_all(data):
        if isinstance(event, carry.HeaderRead):
            header = event.header
            try:
                carry.check_header(header, header.kind, me=reader.party,
                                   own_keys=[reader.key_id], peer_keys=pins)
            except PeerError as exc:
                out["refused"] = exc.reason
                break
        elif isinstance(event, carry.RecordRead):
            records.append((event.record.seq, _record_result(header, event.record)))
        elif isinstance(event, carry.RecordRefused):
            records.append((event.seq, event.reason))
        elif isinstance(event, carry.Finished):
            out["complete"] = True
        elif isinstance(event, carry.Broken):
            out["refused" if header is None else "problem"] = event.reason
    out["records"] = records
    return out


def _record_result(header: CarryHeader | None, record: Record) -> str:
    assert header is not None
    if header.kind is not FileKind.ENVELOPES:
        return "read"
    h = envelope.parse(record.body)[0]
    other = carry.record_names_other(header, record, sender=h.sender, recipient=h.recipient,
                                     seq=h.seq)
    return "read" if other is None else "record_mismatch"


def write_carry(out: Any, make: EnvelopeMaker, alpha: PrivateIdentity, beta: PrivateIdentity,
                mallory: PrivateIdentity, write_bytes: Callable[..., None],
                dump_json: Callable[[Any], bytes]) -> None:
    """Each vector and ``expected.json`` under ``out``, after the implementation agrees."""
    pins = {alpha.party: {beta.key_id: beta.party}, beta.party: {alpha.key_id: alpha.party}}
    readers = {alpha.party: alpha, beta.party: beta}
    expected = []
    for sub, vectors in carry_vectors(make, alpha, beta, mallory):
        for vec in vectors:
            got = expected_of(vec.data, readers[vec.reader], pins[vec.reader])
            want = {"refused": vec.refused, "problem": vec.problem, "records": vec.records,
                    "complete": vec.refused is None and vec.problem is None}
            if got != want:
                raise SystemExit(f"carry/{sub}/{vec.name}: expected {want}, the "
                                 f"implementation says {got}")
            rel = f"{sub}/{vec.name}.carry"
            write_bytes(out / rel, vec.data)
            expected.append({"file": rel, "reader": vec.reader, "ok": want["complete"],
                             "refused": vec.refused, "problem": vec.problem,
                             "records": [{"seq": s, "result": r} for s, r in vec.records],
                             "tries": vec.tries})
    write_bytes(out / "expected.json", dump_json({
        "keys": ["../keys/alpha-test.pub", "../keys/beta-test.pub",
                 "../keys/mallory-test.pub"], "vectors": expected}))
