"""Text from outside, never a record's value in an error, and always bounded and escaped where
it is named. A file with no header row puts a person's name where a column's name is due; a
``--set`` typed without its key is a value; a witness's or a peer's note names an origin and
key names of its choosing; a broker's error text quotes subjects. Each test below tries one
such leak: the value (marked ``ZZLEAKZZ``) must not appear, a name may appear only escaped
and bounded. Every value here is synthetic."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

import bridge.engine.outbound  # noqa: F401  (first: queries is imported through it)
from bridge.cli.main import main
from bridge.core.crypto.key_file_json import key_file_json
from bridge.core.errors import BridgeError, DecodeError, InputError
from bridge.core.notes import witness_wire
from bridge.core.notes.checkpoint import Checkpoint
from bridge.core.notes.note import MAX_KEY_NAME_BYTES, check_key_name, parse_note
from bridge.core.printable import QUOTED_CHARS, SAID_CHARS, quoted, said
from bridge.engine.found import only_document
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.home.addresses import check_peer_url, parse_listen
from bridge.records.categories import check_submission
from bridge.records.importers import ImportErrors, import_acks, import_document
from bridge.records.importers.json_files import load_json_submission
from bridge.transports.http.courier import HttpCourier

LEAK = "ZZLEAKZZ"
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: reorders what a terminal shows after it
ESC = "\x1b"


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def _import_errors(path: Path, **kw: Any) -> str:
    with pytest.raises(ImportErrors) as err:
        import_document(str(path), **kw)
    return str(err.value) + json.dumps([e.to_json() for e in err.value.errors])


# ---------------------------------------------------------------- a file with no header row

def test_a_roster_with_no_header_row_quotes_none_of_its_first_row(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "pow.csv", [
        ["POW-1", f"Marrow {LEAK}", f"Lina {LEAK}", "1990-01-02", f"SN {LEAK}"],
        ["POW-2", "Avenor", "Ari", "1991-04-12", "SN-2"]])
    said_ = _import_errors(path, doc_type="roster", category="pow")
    assert LEAK not in said_ and "Marrow" not in said_, said_
    assert "row 1, column B: the header of this column is not a known field" in said_, said_


def test_a_first_row_with_two_equal_cells_is_not_quoted_as_a_column_named_twice(
        tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "m.csv", [["id", LEAK, LEAK], ["BAG-1", "x", "y"]])
    said_ = _import_errors(path, doc_type="manifest")
    assert LEAK.lower() not in said_.lower(), said_
    assert "row 1, column C: the header of this column is also that of column B" in said_


def test_a_known_field_named_twice_is_still_named(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "m.csv", [["id", "kind", "kind"], ["BAG-1", "document", "x"]])
    assert "the column kind is named twice (also column B)" in _import_errors(
        path, doc_type="manifest")


def test_a_dna_like_header_is_named_only_by_the_words_of_the_rule_it_matched(
        tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "m.csv", [["id", "kind", f"allele {LEAK}"],
                                           ["BAG-1", "document", "x"]])
    said_ = _import_errors(path, doc_type="manifest")
    assert LEAK.lower() not in said_.lower(), said_
    assert "row 1, column C (allele): raw DNA profiles" in said_, said_


def test_an_ack_file_with_no_header_row_quotes_none_of_its_first_row(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "acks.csv", [
        ["BAG-1", "DISPUTED", f"date of birth of Marrow {LEAK} does not match"],
        ["BAG-2", "RECEIVED", ""]])
    with pytest.raises(ImportErrors) as err:
        import_acks(str(path))
    said_ = str(err.value) + json.dumps([e.to_json() for e in err.value.errors])
    assert LEAK.lower() not in said_.lower() and "marrow" not in said_.lower(), said_
    assert "row 1, column C: the header of this column is not a known field" in said_, said_


def test_a_damaged_sheet_whose_reader_quotes_a_cell_is_refused_without_the_cell(
        tmp_path: Path) -> None:
    """A number cell holding text: the XLSX reader's own error quotes the cell."""
    good = tmp_path / "good.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["id", "kind", "body_tag"])
    book.active.append(["BAG-1", "document", 7001])
    book.save(good)
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<v>7001</v>", f"<v>Marrow {LEAK}</v>".encode(), data)
                assert LEAK.encode() in data
            dst.writestr(info, data)
    with pytest.raises(InputError) as err:
        import_document(str(bad), doc_type="manifest")
    assert LEAK not in str(err.value) and "cannot be read" in str(err.value), str(err.value)


def test_a_json_file_with_an_unknown_top_level_key_names_it_bounded_and_escaped(
        tmp_path: Path) -> None:
    key = ESC + "]8;;x" + LEAK * 40
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"items": [], key: 1}), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_json_submission(str(path))
    said_ = str(err.value) + str(err.value.field)
    assert ESC not in said_ and LEAK * 10 not in said_ and "\\x1b" in said_, said_


# ---------------------------------------------------------------- command-line options

def test_a_set_option_without_its_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    sheet = _write_csv(tmp_path / "m.csv", [["id", "kind"], ["BAG-1", "document"]])
    done = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "send", "manifest",
                                     str(sheet), "--to", "beta", "--set", f"Marrow {LEAK}"])
    assert done.exit_code == 2, done.output
    assert "--set number 1 is not KEY=VALUE" in done.output and LEAK not in done.output


def test_an_item_given_twice_on_the_command_line_is_named_bounded_and_escaped(
        tmp_path: Path) -> None:
    item = BIDI + LEAK * 40
    done = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "ack", "M-1",
                                     "--item", item, "RECEIVED", "--item", item, "RECEIVED"])
    assert done.exit_code == 2, done.output
    assert "is given twice" in done.output, done.output
    assert BIDI not in done.output and LEAK * 10 not in done.output, done.output


# ---------------------------------------------------------------- notes: origins, key names

def _note(origin: str, names: list[str]) -> bytes:
    text = f"{origin}\n1\n{base64.b64encode(bytes(32)).decode()}\n"
    sigs = "".join(f"\u2014 {n} {base64.b64encode(bytes(68)).decode()}\n" for n in names)
    return (text + "\n" + sigs).encode()


def test_a_checkpoint_origin_longer_than_the_cosignature_bound_is_refused() -> None:
    """tlog-cosignature's ``opaque log_origin<1..2^8-1>``: no origin is over 255 bytes."""
    long = "w.example/" + LEAK * 40
    request = witness_wire.AddCheckpoint(old=0, proof=(), note=_note(long, ["k"]))
    d = witness_wire.decide(request, trusted=lambda o: [], state=lambda o: None,
                            cosign=lambda t: [])
    assert (d.status, d.reason) == (400, "malformed"), d
    assert LEAK not in d.detail, d.detail
    with pytest.raises(InputError):
        Checkpoint(origin="o" * (MAX_KEY_NAME_BYTES + 1), size=0, root=bytes(32))
    assert check_key_name("o" * MAX_KEY_NAME_BYTES)


def test_an_unknown_origin_is_answered_escaped() -> None:
    origin = f"w.example/{BIDI}{LEAK}"
    request = witness_wire.AddCheckpoint(old=0, proof=(), note=_note(origin, ["k"]))
    d = witness_wire.decide(request, trusted=lambda o: None, state=lambda o: None,
                            cosign=lambda t: [])
    assert (d.status, d.reason) == (404, "unknown_origin"), d
    assert BIDI not in d.detail and "\\u202e" in d.detail, d.detail


def test_a_signature_line_with_a_bad_key_name_is_refused_without_quoting_it() -> None:
    """A witness's answer is appended to our note and parsed: its key names are its own."""
    with pytest.raises(DecodeError) as err:
        parse_note(_note("w.example/log", [f"{LEAK}+x"]))
    assert err.value.reason == "malformed_note" and LEAK not in str(err.value), str(err.value)
    with pytest.raises(DecodeError) as err:
        parse_note(_note("w.example/log", ["k" + LEAK * 40]))
    assert LEAK not in str(err.value), str(err.value)


# ---------------------------------------------------------------- the helpers themselves

@pytest.mark.parametrize(("shown", "limit"), [(quoted, QUOTED_CHARS), (said, SAID_CHARS)])
def test_text_from_outside_is_shown_escaped_and_bounded(shown: Any, limit: int) -> None:
    text = ESC + "[2J" + BIDI + LEAK * 100
    out = shown(text)
    assert ESC not in out and BIDI not in out and "\\x1b" in out and "\\u202e" in out
    assert len(out) <= limit + 5 and out.rstrip("'").endswith("..."), out
    assert shown("BAG-1").strip("'") == "BAG-1"


def test_an_address_refused_is_shown_escaped_and_bounded() -> None:
    for refuse in (lambda: check_peer_url("http://" + ESC + LEAK * 100),
                   lambda: parse_listen(ESC + LEAK * 100)):
        with pytest.raises(BridgeError) as err:
            refuse()
        assert ESC not in str(err.value) and LEAK * 50 not in str(err.value), str(err.value)


def test_a_local_caller_asking_for_an_unknown_long_id_is_answered_bounded() -> None:
    with pytest.raises(InputError) as err:
        only_document(None, ESC + LEAK * 1000, [])  # type: ignore[arg-type]
    assert err.value.code == "not_found" and ESC not in str(err.value)
    assert len(str(err.value)) < 100, str(err.value)


def test_an_identity_file_with_a_long_key_given_twice_is_refused_bounded() -> None:
    """A peer's identity file: its keys are the peer's text."""
    key = BIDI + LEAK * 1000
    with pytest.raises(ValueError) as err:
        key_file_json(json.dumps({key: 1})[:-1] + f", {json.dumps(key)}: 2}}")
    assert BIDI not in str(err.value) and len(str(err.value)) < 120, str(err.value)


# ---------------------------------------------------------------- a peer that answers garbage

def test_a_peer_answering_a_garbled_status_line_is_logged_bounded_and_escaped() -> None:
    """aiohttp's error for a status line it cannot parse quotes the bytes the peer sent."""
    garbage = b"HTTP/1.1 2" + b"\x1b[2J" + LEAK.encode() * 200 + b"\r\n\r\n"

    async def run() -> Arrival:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(garbage)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        courier = HttpCourier(url=f"http://127.0.0.1:{port}", request_timeout=10)
        try:
            await courier.send([Outgoing(peer="beta", seq=1, digest=bytes(32), data=b"x")])
            return await asyncio.wait_for(courier.receive(), 10)
        finally:
            await courier.close()
            server.close()
            await server.wait_closed()

    arrival = asyncio.run(run())
    assert arrival.result is Carried.UNREACHABLE, arrival
    assert ESC not in arrival.detail and LEAK * 30 not in arrival.detail, arrival.detail


@pytest.mark.parametrize("key", [ESC + "]8;;zz_" + LEAK * 40, "zz_" + LEAK.lower() * 40],
                         ids=["bad_name", "unknown_name"])
def test_a_records_key_is_named_in_the_field_escaped_and_bounded(key: str) -> None:
    """A JSON record's keys are its own: named (a key is no person's data), never raw."""
    record = {"id": "R-1", "category": "civilian_detainee", key: "x"}
    found = check_submission("roster", {"category": "civilian_detainee"}, [record])
    assert found is not None
    fields = [e.field for e in found.errors]
    assert fields and all(ESC not in f and len(f) < 100 for f in fields), fields
