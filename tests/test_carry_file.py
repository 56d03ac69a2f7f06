"""The offline carrier file (PROTOCOL.md §12): the committed vectors read as expected.json
says, and the reader's bounds against hostile files (every read bounded before it is made,
a damaged record refused on its own, a cut file told from a whole one)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cli.carry import _print_import
from bridge.core import carry, envelope
from bridge.core.carry import CarryHeader, CarryLimits, FileKind, Reader, Record
from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import PeerError
from bridge.transports.carry.files import Imported

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
CARRY = VECTORS / "carry"
EXPECTED = json.loads((CARRY / "expected.json").read_text())


def _keys() -> dict[str, PublicIdentity]:
    out = {}
    for name in ("alpha-test", "beta-test", "mallory-test"):
        ident = PublicIdentity.loads((VECTORS / "keys" / f"{name}.pub").read_bytes())
        out[name] = ident
    return out


def read_as(data: bytes, reader: str) -> dict[str, Any]:
    """What ``reader`` finds in a carrier file, pinning the other test party (as the daemon
    does: the header checked first, then each record, then the envelope inside it)."""
    keys = _keys()
    other = "alpha-test" if reader == "beta-test" else "beta-test"
    found: dict[str, Any] = {"refused": None, "problem": None, "records": [], "ok": False}
    header = None
    for event in carry.read_all(data):
        if isinstance(event, carry.HeaderRead):
            header = event.header
            try:
                carry.check_header(header, header.kind, me=reader,
                                   own_keys=[keys[reader].key_id],
                                   peer_keys={keys[other].key_id: other})
            except PeerError as exc:
                found["refused"] = exc.reason
                break
        elif isinstance(event, carry.RecordRead):
            result = "read"
            assert header is not None
            if header.kind is FileKind.ENVELOPES:
                h = envelope.parse(event.record.body)[0]
                if carry.record_names_other(header, event.record, sender=h.sender,
                                            recipient=h.recipient, seq=h.seq):
                    result = "record_mismatch"
            found["records"].append({"seq": event.record.seq, "result": result})
        elif isinstance(event, carry.RecordRefused):
            found["records"].append({"seq": event.seq, "result": event.reason})
        elif isinstance(event, carry.Finished):
            found["ok"] = True
        elif isinstance(event, carry.Broken):
            found["refused" if header is None else "problem"] = event.reason
    return found


@pytest.mark.parametrize("vector", EXPECTED["vectors"], ids=lambda v: v["file"])
def test_carrier_vector_reads_as_expected(vector: dict[str, Any]) -> None:
    data = (CARRY / vector["file"]).read_bytes()
    want = {k: vector[k] for k in ("refused", "problem", "records", "ok")}
    assert read_as(data, vector["reader"]) == want


def test_the_vectors_cover_every_fault_the_format_names() -> None:
    files = [v["file"] for v in EXPECTED["vectors"]]
    assert {"invalid/truncated.carry", "invalid/flipped-byte.carry",
            "invalid/wrong-recipient.carry", "invalid/count-mismatch.carry",
            "invalid/duplicate-envelope.carry", "invalid/out-of-order.carry"} <= set(files)
    assert len(set(files)) == len(files)
    assert all((CARRY / f).is_file() for f in files)


HEADER = CarryHeader(kind=FileKind.ENVELOPES, sender="alpha", sender_key=b"a" * 32,
                     recipient="bravo", recipient_key=b"b" * 32, created=1)


def _file(n: int, size: int = 10) -> bytes:
    return carry.encode_file(HEADER, [carry.envelope_record(i, bytes([i]) * size)
                                      for i in range(1, n + 1)])


def test_a_file_fed_in_one_byte_pieces_reads_as_the_whole() -> None:
    data = _file(3)
    feeder = carry.Feeder(Reader())
    pieces: list[carry.Event] = []
    for i in range(len(data)):
        pieces += feeder.push(data[i:i + 1])
    pieces += feeder.close()
    assert pieces == carry.read_all(data)
    assert isinstance(pieces[-1], carry.Finished) and pieces[-1].count == 3


def test_a_record_declaring_more_than_the_limit_is_refused_before_it_is_read() -> None:
    data = _file(1, size=100)
    events = carry.read_all(data, CarryLimits(max_record_bytes=99))
    assert events[-1] == carry.Broken(reason="record_too_large",
                                      detail="record 1 declares 100 bytes (at most 99)")
    # A length field of 4 GiB with nothing behind it costs nothing either.
    head = HEADER.encode() + bytes([carry.TAG_RECORD]) + (1).to_bytes(8, "big") + b"x" * 32
    bomb = head + (2**32 - 1).to_bytes(4, "big")
    assert carry.read_all(bomb)[-1].reason == "record_too_large"  # type: ignore[union-attr]


def test_more_records_than_the_cap_are_refused() -> None:
    events = carry.read_all(_file(4), CarryLimits(max_records=3))
    assert [type(e).__name__ for e in events] == ["HeaderRead", *["RecordRead"] * 3, "Broken"]
    assert events[-1].reason == "too_many_records"  # type: ignore[union-attr]


def test_a_file_over_the_size_cap_is_refused() -> None:
    events = carry.read_all(_file(3, size=1000), CarryLimits(max_file_bytes=1500))
    assert events[-1].reason == "file_too_large"  # type: ignore[union-attr]


def test_a_prefix_and_header_naming_different_kinds_is_refused() -> None:
    data = bytearray(_file(1))
    data[len(carry.MAGIC) + 1] = int(FileKind.ANSWERS)
    assert carry.read_all(bytes(data))[-1].reason == "bad_header"  # type: ignore[union-attr]


def test_a_file_of_answers_where_envelopes_are_expected_is_refused() -> None:
    answers = carry.encode_file(CarryHeader(kind=FileKind.ANSWERS, sender="bravo",
                                            sender_key=b"b" * 32, recipient="alpha",
                                            recipient_key=b"a" * 32, created=1), [])
    events = carry.read_all(answers, kind=FileKind.ENVELOPES)
    assert events == [carry.Broken(reason="wrong_kind", detail=events[0].detail)]  # type: ignore[union-attr]


def test_a_header_with_an_extra_key_is_refused() -> None:
    from bridge.core import codec

    body = codec.encode({**HEADER.to_map(), "x": 1})
    data = carry.MAGIC + bytes([1, 1]) + len(body).to_bytes(2, "big") + body
    assert carry.read_all(data)[-1].reason == "bad_header"  # type: ignore[union-attr]


def test_an_empty_file_is_truncated_not_a_crash() -> None:
    assert carry.read_all(b"") == [carry.Broken(reason="truncated",
                                                detail="the file ends inside its prefix")]


def test_a_damaged_record_does_not_hide_the_footer_check() -> None:
    """A record damaged in its seq field (not covered by its own hash) still reads, so the
    engine refuses it by its envelope's header; the footer's digest says the file changed."""
    data = bytearray(_file(2))
    at = len(HEADER.encode()) + 8  # the last byte of record 1's seq
    data[at] ^= 0x04
    events = carry.read_all(bytes(data))
    assert events[-1].reason == "file_digest_mismatch"  # type: ignore[union-attr]


def test_the_footer_digest_is_sha256_of_everything_before_it() -> None:
    data = _file(2)
    assert data[-32:] == hashlib.sha256(data[:-32]).digest()
    assert data[-41] == carry.TAG_END and int.from_bytes(data[-40:-32], "big") == 2


def test_a_record_of_seq_zero_is_refused() -> None:
    body = b"x" * 4
    rec = (bytes([carry.TAG_RECORD]) + (0).to_bytes(8, "big") + hashlib.sha256(body).digest()
           + len(body).to_bytes(4, "big") + body)
    data = HEADER.encode() + rec
    data += bytes([carry.TAG_END]) + (1).to_bytes(8, "big")
    data += hashlib.sha256(data).digest()
    events = carry.read_all(data)
    assert isinstance(events[1], carry.RecordRefused) and events[1].reason == "bad_record"
    assert isinstance(events[-1], carry.Finished)


def test_records_are_built_valid_or_not_at_all() -> None:
    with pytest.raises(Exception, match="seq"):
        Record(seq=0, envelope=b"x" * 32, body=b"y")
    with pytest.raises(Exception, match="32 bytes"):
        CarryHeader(kind=FileKind.ENVELOPES, sender="alpha", sender_key=b"a", recipient="b",
                    recipient_key=b"b" * 32, created=1)


def test_peer_text_in_an_import_report_is_escaped() -> None:
    """What a daemon reports about a record may quote what the file brought: escaped."""
    report = {"from": "alpha", "to": "bravo", "complete": False, "new": 0,
              "problem": {"reason": "truncated", "detail": "cut \x1b]8;;http://x\x07here"},
              "records": [{"seq": 2, "result": "not_read", "reason": "record_damaged",
                           "detail": "\x1b[2J\u202eevil"}]}
    done = Imported(kind=FileKind.ENVELOPES, report=report, records=report["records"])

    @click.command()
    def show() -> None:
        _print_import(Path("f.carry"), done)

    out = CliRunner().invoke(show).output
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "envelope 2: not read (record_damaged)" in out
    assert "Nothing changed" in out


# ---------------------------------------------------------------- hostile files, generated

WHOLE = (CARRY / "valid" / "001-three-envelopes.carry").read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(WHOLE) - 1), st.integers(1, 255)),
                min_size=1, max_size=4), st.integers(0, len(WHOLE)))
def test_a_mangled_file_gets_events_never_an_exception(flips: list[tuple[int, int]],
                                                       cut: int) -> None:
    """Any bytes flipped and any cut: the reader ends in one Broken or Finished event, and no
    envelope it passes on differs from the hash its record names."""
    data = bytearray(WHOLE)
    for at, mask in flips:
        data[at] ^= mask
    events = carry.read_all(bytes(data[:cut]))
    assert isinstance(events[-1], (carry.Broken, carry.Finished))
    assert sum(isinstance(e, (carry.Broken, carry.Finished)) for e in events) == 1
    kinds = [e.header.kind for e in events if isinstance(e, carry.HeaderRead)]
    for e in events:
        if isinstance(e, carry.RecordRead) and kinds == [FileKind.ENVELOPES]:
            assert hashlib.sha256(e.record.body).digest() == e.record.envelope


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_refused_with_a_reason(data: bytes) -> None:
    events = carry.read_all(carry.MAGIC + data)
    assert isinstance(events[-1], carry.Broken) and events[-1].reason
