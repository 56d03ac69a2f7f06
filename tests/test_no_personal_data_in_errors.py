"""No personal data in errors: a value the schema or a cell conversion refuses (a name, a date
of birth, a service number in production) appears in no error message, no log line and no
command output, while the field is still named (``items[n].surname``, "row R, column C
(surname)"). Error messages are logged and shown in terminals; a key (a field's name) is not
personal data and may be named, a value is not. Every value here is synthetic and carries the
marker ``ZZLEAKZZ`` so that a leak of any part of it is seen."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from harness import open_pair, person, wire
from test_local_stream import Served

from bridge import client_wire
from bridge.client import ApiError, BridgeClient
from bridge.core import codec
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.entries import AckItem, decode_declared_entry
from bridge.core.errors import InputError, VerificationError
from bridge.records.importers import ImportErrors, import_acks
from bridge.records.record_schemas import roster_schema
from bridge.records.schema import describe

LEAK = "ZZLEAKZZ"
LONG = LEAK * 30  # 240 characters: longer than a text field (200) and a code (64)

CIVILIAN = {"id": "CIV-1", "category": "civilian_detainee", "surname": "Marrow",
            "first_names": "Lina", "date_of_birth": "1978-05-14", "nationality": "Beta",
            "measure_nature": "internment", "measure_date": "2026-02-10"}
ROSTER = {"category": "civilian_detainee"}

# (what is tried, type, meta, items, the field the error must name)
CASES: list[tuple[str, str, dict[str, Any] | None, list[Any], str]] = [
    ("document maxLength", "roster", None, [{"id": "R-1", "note": LEAK * 600}], "items[0].note"),
    ("document type", "roster", None, [LEAK], "items[0]"),
    ("document pattern", "roster", None, [{"id": f"{LEAK} 1"}], "items[0].id"),
    ("document enum", LEAK, None, [{"id": "R-1"}], "type"),
    ("record maxLength", "roster", ROSTER, [CIVILIAN | {"surname": LONG}], "items[0].surname"),
    ("record minLength", "roster", ROSTER, [CIVILIAN | {"surname": ""}], "items[0].surname"),
    ("record pattern", "roster", ROSTER, [CIVILIAN | {"date_of_birth": LEAK}],
     "items[0].date_of_birth"),
    ("record enum", "roster", ROSTER, [CIVILIAN | {"measure_nature": LEAK}],
     "items[0].measure_nature"),
    ("record const", "roster", ROSTER, [CIVILIAN | {"category": LEAK}], "items[0].category"),
    ("record type", "roster", ROSTER, [CIVILIAN | {"surname": [LEAK]}], "items[0].surname"),
    ("record additionalProperties", "roster", ROSTER,
     [CIVILIAN | {"zz_key": LEAK}], "items[0].zz_key"),
]


@pytest.fixture
def served(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Served]:
    with open_pair(tmp_path, alpha, beta) as h:
        s = Served(h, tmp_path / "alpha.sock")
        yield s
        s.close()


@pytest.fixture
def received(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Served]:
    """Alpha's API, alpha having received beta's one-item manifest M-1."""
    with open_pair(tmp_path, alpha, beta) as h:
        wire.submit(h.beta.engine, "manifest", "alpha", [person(0)], doc_id="M-1")
        h.courier.settle()
        s = Served(h, tmp_path / "alpha.sock")
        yield s
        s.close()


def _refused(submit: Any) -> ApiError:
    with pytest.raises(ApiError) as err:
        submit()
    assert err.value.status == 400
    return err.value


def _no_leak(said: str, logs: str) -> None:
    assert LEAK not in said and LEAK not in logs, (said, logs)


@pytest.mark.parametrize(("what", "doc_type", "meta", "items", "field"), CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("how", ["json", "ndjson", "msgpack"])
def test_a_refused_value_is_quoted_in_no_api_error_and_no_log_line(
        served: Served, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        how: str, what: str, doc_type: str, meta: dict[str, Any] | None, items: list[Any],
        field: str) -> None:
    caplog.set_level(logging.DEBUG)
    if how == "ndjson":
        monkeypatch.setattr(client_wire, "msgpack", None)
    client = BridgeClient(served.sock)
    if how == "json":
        err = _refused(lambda: client.submit_document(doc_type, "beta", items, meta=meta))
    else:
        err = _refused(lambda: client.submit_document_stream(
            doc_type, "beta", items, count=len(items), meta=meta))
    assert err.field == field, (what, str(err))
    _no_leak(str(err) + repr(err.__dict__), caplog.text)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_bridge_send_of_a_bad_csv_quotes_no_cell_but_names_row_and_field(
        tmp_path: Path) -> None:
    """No daemon answers, so the command checks the file itself and lists every bad row."""
    good = {"id": "POW-1", "category": "pow", "surname": "Marrow", "first_names": "Lina",
            "rank": "Private", "date_of_birth": "1990-01-02", "service_number": "SN-1",
            "seriously_ill": "no", "age_band": "18-25"}
    bad = [{"surname": LONG}, {"service_number": LONG}, {"date_of_birth": LEAK},
           {"date_of_birth": "1990-02-30"}, {"seriously_ill": LEAK}, {"age_band": LEAK},
           {"category": LEAK}]
    rows = [good | {"id": f"POW-{n + 2}"} | change for n, change in enumerate(bad)]
    path = _write_csv(tmp_path / "pow.csv", [good, *rows])
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(tmp_path / "home"), "send", "roster",
         str(path), "--to", "beta", "--category", "pow"],
        capture_output=True, text=True, timeout=60, check=False)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    for row, change in enumerate(bad, start=3):
        (name,) = change
        assert f"row {row}, column" in said and f"({name})" in said, (row, said)
    assert LEAK not in said and "1990-02-30" not in said, said


KEYWORDS: list[tuple[dict[str, Any], Any]] = [
    ({"maxLength": 3}, LEAK), ({"minLength": 20}, LEAK), ({"pattern": "^[0-9]+$"}, LEAK),
    ({"enum": ["a", "b"]}, LEAK), ({"const": "a"}, LEAK), ({"type": "integer"}, LEAK),
    ({"format": "date", "type": "string"}, LEAK), ({"not": {"type": "string"}}, LEAK),
    ({"additionalProperties": False}, {"zz_key": LEAK}), ({"uniqueItems": True}, [LEAK, LEAK]),
    ({"maxItems": 1}, [LEAK, LEAK]), ({"anyOf": [{"type": "integer"}, {"maxLength": 1}]}, LEAK),
    ({"propertyNames": {"maxLength": 1}}, {"zz": LEAK}), ({"multipleOf": 7}, 12345678),
]


@pytest.mark.parametrize(("schema", "value"), KEYWORDS, ids=[next(iter(s)) for s, _ in KEYWORDS])
def test_every_schema_keyword_is_described_without_the_value(
        schema: dict[str, Any], value: Any) -> None:
    """jsonschema's own messages quote the instance; ours are built from the keyword alone."""
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    errors = list(validator.iter_errors(value))
    assert errors, schema
    for err in errors:
        words = describe(err.kind)
        assert words and LEAK not in words and "12345678" not in words, (schema, words)


@pytest.mark.parametrize("how", ["json", "ndjson"])
def test_an_acknowledgement_reason_that_is_refused_is_not_quoted(
        received: Served, caplog: pytest.LogCaptureFixture, how: str) -> None:
    """A reason is free text a person types ("date of birth does not match ..."): one over
    the limit is refused by the ack schema, before the document is even looked up."""
    caplog.set_level(logging.DEBUG)
    client = BridgeClient(received.sock)
    items = [{"id": person(0)["id"], "status": "DISPUTED", "reason": LEAK * 600}]
    if how == "json":
        err = _refused(lambda: client.acknowledge("M-1", items=items))
    else:
        err = _refused(lambda: client.acknowledge_stream("M-1", items))
    assert err.field == "items[0].reason", str(err)
    _no_leak(str(err) + repr(err.__dict__), caplog.text)


def test_an_unknown_status_in_an_ack_file_is_refused_by_row_and_column_not_quoted(
        tmp_path: Path) -> None:
    # A shifted column puts a person's name where the status is due.
    path = _write_csv(tmp_path / "acks.csv", [{"id": "BAG-1", "status": "RECEIVED"},
                                              {"id": "BAG-2", "status": f"Marrow {LEAK}"}])
    with pytest.raises(ImportErrors) as err:
        import_acks(str(path))
    said = str(err.value)
    assert "row 3, column B (status): unknown status; one of: RECEIVED" in said, said
    assert LEAK not in said and "Marrow" not in said, said


@pytest.mark.parametrize("how", ["json", "ndjson"])
def test_an_unknown_status_given_to_the_local_api_is_refused_without_the_word(
        received: Served, caplog: pytest.LogCaptureFixture, how: str) -> None:
    caplog.set_level(logging.DEBUG)
    client = BridgeClient(received.sock)
    items = [{"id": person(0)["id"], "status": LEAK}]
    if how == "json":
        err = _refused(lambda: client.acknowledge("M-1", items=items))
    else:
        err = _refused(lambda: client.acknowledge_stream("M-1", items))
    assert err.field == "items[0].status", str(err)
    _no_leak(str(err) + repr(err.__dict__), caplog.text)


@pytest.mark.parametrize("refuse", [
    lambda: AckItem(id="BAG-1", status=LEAK),
    lambda: roster_schema(LEAK),
], ids=["ack_status", "roster_category"])
def test_an_unknown_word_is_refused_naming_the_field_not_the_word(
        refuse: Callable[[], Any]) -> None:
    with pytest.raises(InputError) as err:
        refuse()
    assert err.value.field in {"status", "category"}
    assert LEAK not in str(err.value)


def test_a_peer_entry_whose_index_is_text_is_refused_without_quoting_it() -> None:
    # A peer's entry with a name where its index is due: the refusal is logged and stored.
    leaf = codec.pack_value({"data": {}, "i": LEAK, "id": "item-0", "salt": b"\x07" * 16})
    with pytest.raises(VerificationError) as err:
        decode_declared_entry(leaf, 0)
    assert err.value.reason == "bad_entry" and LEAK not in str(err.value)
