"""Imports (bridge.records.importers) and the CLI that uses them: CSV, XLSX and JSON files, every
bad row reported with its row, column and field, nothing committed unless every row is good.
Synthetic data only (invented names and places)."""

from __future__ import annotations

import csv
import datetime
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.cli.main import main
from bridge.client import ApiError, BridgeClient
from bridge.core.errors import BridgeError, InputError, UsageError
from bridge.records import categories
from bridge.records.categories import CATEGORIES, validate_submission
from bridge.records.importers import (
    MAX_LISTED,
    ImportErrors,
    RowError,
    header_name,
    import_acks,
    import_document,
    tables,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
POW_HEADER = ["id", "surname", "first_names", "rank", "date_of_birth", "service_number"]
POW_ROW = ["POW-1", "Avenor", "Ari", "corporal", "1991-04-12", "AL-40037"]


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def problems(err: ImportErrors) -> list[tuple[int | None, str | None, str | None]]:
    return [(e.row, e.column, e.field) for e in err.errors]


def import_errors(path: Path, *, doc_type: str = "roster", category: str | None = "pow"
                  ) -> ImportErrors:
    with pytest.raises(ImportErrors) as err:
        import_document(str(path), doc_type=doc_type, category=category)
    return err.value


# ---------------------------------------------------------------- the example files


@pytest.mark.parametrize("category", CATEGORIES)
def test_example_roster_of_each_category_imports(category: str) -> None:
    sub = import_document(str(EXAMPLES / f"roster-{category}.csv"), doc_type="roster",
                          category=category)
    assert sub.items and sub.meta == {"category": category}
    assert sub.schema == f"roster-{category}" and sub.format == "csv"
    assert all(item["category"] == category for item in sub.items)


@pytest.mark.parametrize("category", CATEGORIES)
def test_example_with_errors_of_each_category(category: str) -> None:
    err = import_errors(EXAMPLES / f"roster-{category}-with-errors.csv", category=category)
    assert err.bad_rows >= 5
    assert all(e.row is not None and e.column and e.field for e in err.errors)
    text = str(err)
    assert "nothing was imported" in text
    for code_word in ("required field is missing", "not a date that exists", "duplicate id"):
        assert code_word in text, (category, code_word)


def test_examples_with_errors_cover_every_kind_of_bad_row() -> None:
    text = ""
    for category in CATEGORIES:
        text += str(import_errors(EXAMPLES / f"roster-{category}-with-errors.csv",
                                  category=category))
    for words in ("required field is missing", "unknown category", "is not a date that exists",
                  "raw DNA profiles are never sent", "duplicate id", "must be a whole number",
                  "is listed in withheld"):
        assert words in text, words


def test_example_manifests_csv_and_json_agree() -> None:
    from_csv = import_document(str(EXAMPLES / "manifest-remains.csv"), doc_type="manifest")
    from_json = import_document(str(EXAMPLES / "manifest-remains.json"), doc_type="manifest")
    assert from_csv.schema == from_json.schema == "manifest-item"
    assert from_csv.items == from_json.items
    err = import_errors(EXAMPLES / "manifest-remains-with-errors.csv", doc_type="manifest",
                        category=None)
    assert {e.field for e in err.errors} == {"kind", "category", "id", "roster_record",
                                             "seal_numbers"}


def test_example_xlsx_reads_as_its_csv() -> None:
    from_csv = import_document(str(EXAMPLES / "roster-pow.csv"), doc_type="roster",
                               category="pow")
    from_xlsx = import_document(str(EXAMPLES / "roster-pow.xlsx"), doc_type="roster",
                                category="pow")
    assert from_xlsx.format == "xlsx" and from_xlsx.items == from_csv.items


def test_make_xlsx_script_regenerates_the_same_records(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("make_xlsx", EXAMPLES / "make_xlsx.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "TARGET", tmp_path / "roster-pow.xlsx")
    monkeypatch.setattr(script, "HERE", tmp_path)
    monkeypatch.setattr(script, "SOURCE", EXAMPLES / "roster-pow.csv")
    script.main()
    again = import_document(str(tmp_path / "roster-pow.xlsx"), doc_type="roster",
                            category="pow")
    committed = import_document(str(EXAMPLES / "roster-pow.xlsx"), doc_type="roster",
                                category="pow")
    assert again.items == committed.items


def test_example_acks_and_json_roster() -> None:
    acks = import_acks(str(EXAMPLES / "acks-manifest-remains.csv"))
    assert [a["status"] for a in acks][:3] == ["RECEIVED", "RECEIVED", "COMMINGLED"]
    assert acks[2] == {"id": "BAG-0003", "status": "COMMINGLED",
                       "reason": "bag holds parts of two persons",
                       "evidence": "exam note EX-2026-12"}
    sub = import_document(str(EXAMPLES / "roster-pow.json"), doc_type="roster")
    assert sub.schema == "roster-pow" and sub.meta is not None
    assert sub.meta["category"] == "pow"


# ---------------------------------------------------------------- cells and headers


def test_cells_convert_by_the_schema(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [
        [*POW_HEADER, "Seriously ill", "held for proceedings", "withheld", "capture_place"],
        [*POW_ROW, "yes", "0", " mother_maiden_name ; person_to_inform ;", "  Hill 212  "],
        ["POW-2", "Belcastro", "Bren", "private", "2001", "AL-2", "", "", "", ""]])
    items = import_document(str(path), doc_type="roster", category="pow").items
    assert items[0]["seriously_ill"] is True and items[0]["held_for_proceedings"] is False
    assert items[0]["withheld"] == ["mother_maiden_name", "person_to_inform"]
    assert items[0]["capture_place"] == "Hill 212"
    assert items[1] == {"category": "pow", "id": "POW-2", "surname": "Belcastro",
                        "first_names": "Bren", "rank": "private", "date_of_birth": "2001",
                        "service_number": "AL-2"}  # blank cells are absent fields


def test_integers_and_nested_fields(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [
        ["id", "body_tag", "recovery_date", "recovery_place", "presumed_identity",
         "presumed_affiliation", "bag_id", "estimated_individuals", "identification.status",
         "identification.method"],
        ["HR-1", "BT-1", "2026-10-02", "Sector 4", "unknown", "beta forces", "BAG-1", "+2",
         "preliminary", "DNA;dental"],
        ["HR-2", "BT-2", "2026-10-02", "Sector 4", "unknown", "beta forces", "BAG-2", "1", "",
         ""]])
    items = import_document(str(path), doc_type="roster", category="remains").items
    assert items[0]["estimated_individuals"] == 2
    assert items[0]["identification"] == {"status": "preliminary", "method": ["DNA", "dental"]}
    assert "identification" not in items[1]


def test_header_names_are_forgiving() -> None:
    assert header_name(" Date of birth ") == "date_of_birth"
    assert header_name("First-Names") == "first_names"
    assert header_name("identification.status") == "identification.status"
    assert header_name(None) == ""


def test_semicolon_separated_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ";".join(POW_HEADER).encode() + b"\r\n"
                     + ";".join(POW_ROW).encode() + b"\r\n")
    items = import_document(str(path), doc_type="roster", category="pow").items
    assert items[0]["id"] == "POW-1" and items[0]["service_number"] == "AL-40037"


def test_row_numbers_are_the_spreadsheets(tmp_path: Path) -> None:
    # A blank line and a cell spanning two lines: the bad row is still the 5th record.
    path = tmp_path / "r.csv"
    path.write_text(",".join(POW_HEADER) + "\n" + ",".join(POW_ROW) + "\n\n"
                    + 'POW-2,"Belcastro\nBren",Bren,private,1990-01-01,AL-2\n'
                    + "POW-3,Corvin,Cael,,1990-01-01,AL-3\n", encoding="utf-8")
    err = import_errors(path)
    assert problems(err) == [(4, "B", "surname"), (5, "D", "rank")]


# ---------------------------------------------------------------- bad rows


BAD_ROWS: dict[str, tuple[list[str], list[str], str]] = {
    # case: (header, row, the field the error names)
    "missing required field": (POW_HEADER, ["POW-9", "Avenor", "Ari", "", "1991-04-12", "AL-1"],
                               "rank"),
    "unknown category": ([*POW_HEADER, "category"], [*POW_ROW, "prisoner"], "category"),
    "impossible date": (POW_HEADER, ["POW-9", "Avenor", "Ari", "private", "2023-02-30", "AL-1"],
                        "date_of_birth"),
    "raw DNA profile": ([*POW_HEADER, "health_condition"],
                        [*POW_ROW, "D8S1179 13 14 D21S11 29 30 FGA 22 24"], "health_condition"),
    "bad boolean": ([*POW_HEADER, "seriously_ill"], [*POW_ROW, "maybe"], "seriously_ill"),
    "withheld field present": ([*POW_HEADER, "withheld", "mother_maiden_name"],
                               [*POW_ROW, "mother_maiden_name", "Istrel"], "mother_maiden_name"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_each_bad_row_names_row_column_and_field(tmp_path: Path, case: str, fmt: str) -> None:
    header, row, field = BAD_ROWS[case]
    good = ["POW-100", *POW_ROW[1:]]  # a good row before the bad one
    rows: list[list[Any]] = [header, good + [""] * (len(header) - len(good)), row]
    path = (write_csv if fmt == "csv" else write_xlsx)(tmp_path / f"r.{fmt}", rows)
    err = import_errors(path)
    letter = chr(ord("A") + header.index(field))
    assert problems(err) == [(3, letter, field)], str(err)
    assert err.bad_rows == 1
    assert f"row 3, column {letter} ({field}): " in str(err)


def test_bad_integer(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [
        ["id", "case_id", "approximate_age"], ["CHD-1", "TR-1", "6"], ["CHD-2", "TR-2", "six"],
        ["CHD-3", "TR-3", "6.5"]])
    err = import_errors(path, category="child_tracing")
    assert problems(err) == [(3, "C", "approximate_age"), (4, "C", "approximate_age")]
    assert all("whole number" in e.message for e in err.errors)
    assert "six" not in str(err)  # child tracing: every value is sensitive


def test_duplicate_id_names_both_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [POW_HEADER, POW_ROW, POW_ROW])
    err = import_errors(path)
    assert problems(err) == [(3, "A", "id")]
    assert "duplicate id 'POW-1' (first on row 2)" in str(err)


def test_all_bad_rows_are_reported_not_just_the_first(tmp_path: Path) -> None:
    rows = [POW_HEADER] + [[f"POW-{n}", "Avenor", "Ari", "private",
                            "1990-02-30" if n % 2 else "1990-02-01", "AL-1"] for n in range(40)]
    err = import_errors(write_csv(tmp_path / "r.csv", rows))
    assert err.bad_rows == 20
    assert [e.row for e in err.errors] == [n + 2 for n in range(40) if n % 2]


def test_the_list_is_capped_and_the_count_is_whole(tmp_path: Path) -> None:
    rows = [POW_HEADER] + [[f"POW-{n}", "Avenor", "Ari", "", "1990-01-01", "AL-1"]
                           for n in range(MAX_LISTED + 500)]
    err = import_errors(write_csv(tmp_path / "r.csv", rows))
    assert err.bad_rows == MAX_LISTED + 500 and len(err.errors) == MAX_LISTED
    assert f"{MAX_LISTED + 500} bad rows" in str(err)
    assert f"only the first {MAX_LISTED} problems" in str(err)


def test_header_problems_are_said_once(tmp_path: Path) -> None:
    # An unknown header is named by its column, not by its text: a first row may be data.
    rows = [["id", "surame", "first_names", "date_of_birth", "service_number", "id", ""],
            ["POW-1", "Avenor", "Ari", "1991-04-12", "AL-1", "X", "stray"],
            ["POW-2", "Belcastro", "Bren", "1991-04-12", "AL-2", "", ""]]
    err = import_errors(write_csv(tmp_path / "r.csv", rows))
    assert [(e.row, e.column, e.field) for e in err.errors] == [
        (1, "B", None), (1, "F", "id"), (1, None, "surname"), (1, None, "rank"),
        (2, "G", None)]
    text = str(err)
    assert "did you mean 'surname'" in text and "no rank column" in text
    assert "a bad header row" in text


def test_dna_column_is_refused_at_the_header(tmp_path: Path) -> None:
    err = import_errors(write_csv(tmp_path / "r.csv", [[*POW_HEADER, "DNA profile"],
                                                       [*POW_ROW, "x"]]))
    assert problems(err) == [(1, "G", "dna_profile")]
    assert "sample_barcode" in str(err)


def test_manifest_rows_may_carry_agreed_extra_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [
        ["id", "kind", "roster_record", "body_tag", "seal_numbers"],
        ["BAG-1", "remains_package", "HR-1", "BT-7001", "S-1;S-2"]])
    sub = import_document(str(path), doc_type="manifest")
    assert sub.items == [{"id": "BAG-1", "kind": "remains_package", "roster_record": "HR-1",
                          "body_tag": "BT-7001", "seal_numbers": ["S-1", "S-2"]}]
    # ... but a near miss of a known field is a typo, not an extra field.
    err = import_errors(write_csv(tmp_path / "m2.csv", [["id", "kind", "seal_number"],
                                                        ["BAG-1", "document", "S-1"]]),
                        doc_type="manifest", category=None)
    assert "did you mean 'seal_numbers'" in str(err)


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(POW_HEADER).encode() + b"\nPOW-1,M\xfcller,A,p,1990,S\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    for path, words in ((latin, "UTF-8"), (empty, "empty"), (broken, "XLSX"),
                        (tmp_path / "missing.csv", "cannot read"),
                        (tmp_path / "old.xls", ".xlsx or .csv"),
                        (tmp_path / "notes.txt", "unknown file type")):
        with pytest.raises(InputError) as err:
            import_document(str(path), doc_type="roster", category="pow")
        assert words in str(err.value), path.name


def test_a_table_roster_needs_its_category(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [POW_HEADER, POW_ROW])
    with pytest.raises(UsageError):
        import_document(str(path), doc_type="roster")
    with pytest.raises(InputError, match="unknown category"):
        import_document(str(path), doc_type="roster", category="prisoners")


# ---------------------------------------------------------------- XLSX


def test_xlsx_typed_cells(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "r.xlsx", [
        [*POW_HEADER, "seriously_ill", "capture_date"],
        ["POW-1", "Avenor", "Ari", "corporal", datetime.datetime(1991, 4, 12), 40037, True,
         datetime.date(2026, 3, 2)],
        ["POW-2", "Belcastro", "Bren", "private", 1990, 40038.0, 0, "2026-03"],
        [None] * 8,
        ["POW-4", "Corvin", "Cael", "private", "2023-02-30", "AL-4", "perhaps", None]])
    err = import_errors(path)
    assert problems(err) == [(5, "E", "date_of_birth"), (5, "G", "seriously_ill")]
    rows = import_document(str(write_xlsx(tmp_path / "ok.xlsx", [
        [*POW_HEADER, "seriously_ill", "capture_date"],
        ["POW-1", "Avenor", "Ari", "corporal", datetime.datetime(1991, 4, 12), 40037, True,
         datetime.date(2026, 3, 2)],
        ["POW-2", "Belcastro", "Bren", "private", 1990, 40038.0, 0, "2026-03"]])),
        doc_type="roster", category="pow").items
    assert (rows[0]["date_of_birth"], rows[0]["service_number"], rows[0]["seriously_ill"],
            rows[0]["capture_date"]) == ("1991-04-12", "40037", True, "2026-03-02")
    assert (rows[1]["date_of_birth"], rows[1]["service_number"], rows[1]["seriously_ill"]) == (
        "1990", "40038", False)


def test_xlsx_reads_the_first_sheet_only(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(POW_HEADER)
    book.active.append(POW_ROW)
    other = book.create_sheet("notes")
    other.append(["anything", "at all"])
    book.save(tmp_path / "r.xlsx")
    assert len(import_document(str(tmp_path / "r.xlsx"), doc_type="roster",
                               category="pow").items) == 1


# ---------------------------------------------------------------- JSON


def test_json_items_are_checked_with_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    good = dict(zip(POW_HEADER, POW_ROW, strict=True))
    path.write_text(json.dumps({"meta": {"category": "pow"}, "items": [
        good, good | {"id": "POW-2", "date_of_birth": "2023-02-30"}, good]}))
    err = import_errors(path, category=None)
    assert [(e.index, e.field) for e in err.errors] == [(1, "date_of_birth"), (2, "id")]
    assert "items[1].date_of_birth: is not a date that exists" in str(err)
    assert "2023-02-30" not in str(err)  # a date of birth is personal data
    assert "(first at items[0])" in str(err)


def test_json_without_a_category_is_sent_as_before(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    items = [{"id": "P-1", "surname": "Testname1", "eligibility": {"seriously_ill": True}}]
    path.write_text(json.dumps(items))
    sub = import_document(str(path), doc_type="roster")
    assert (sub.items, sub.meta, sub.schema) == (items, None, None)
    path.write_text(json.dumps({"meta": {"category": "civilian detainees"}, "items": items}))
    assert import_document(str(path), doc_type="roster").schema is None
    with pytest.raises(InputError, match="--category says 'pow'"):
        import_document(str(path), doc_type="roster", category="pow")


# ---------------------------------------------------------------- acknowledgements


def test_ack_spreadsheet_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [
        ["ID", "Status", "Reason", "Evidence"], ["BAG-1", "received", "", ""],
        ["BAG-2", "IDENTITY_MISMATCH", "birth date differs", "MR-1"]])
    assert import_acks(str(path)) == [
        {"id": "BAG-1", "status": "RECEIVED"},
        {"id": "BAG-2", "status": "IDENTITY_MISMATCH", "reason": "birth date differs",
         "evidence": "MR-1"}]
    xlsx = write_xlsx(tmp_path / "a.xlsx", [["id", "status"], ["BAG-1", "RECEIVED"],
                                            [1234, "NOT_RECEIVED"]])
    assert import_acks(str(xlsx))[1] == {"id": "1234", "status": "NOT_RECEIVED"}


def test_ack_spreadsheet_bad_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [
        ["id", "status", "reason", "comment"], ["BAG-1", "RECEIVED", "", ""],
        ["BAG-2", "LOST", "", ""], ["", "RECEIVED", "", ""], ["BAG 4", "RECEIVED", "", ""],
        ["BAG-1", "DISPUTED", "again", ""], ["BAG-6", "DISPUTED", "x" * 2001, ""]])
    with pytest.raises(ImportErrors) as err:
        import_acks(str(path))
    assert problems(err.value) == [(1, "D", None), (3, "B", "status"), (4, "A", "id"),
                                   (5, "A", "id"), (6, "A", "id"), (7, "C", "reason")]
    assert err.value.bad_rows == 5
    assert "first on row 2" in str(err.value) and "unknown status" in str(err.value)
    assert "LOST" not in str(err.value)
    with pytest.raises(InputError, match=r"\.csv or \.xlsx"):
        import_acks(str(tmp_path / "a.json"))


# ---------------------------------------------------------------- robustness


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
       header=st.sampled_from(["", ",".join(POW_HEADER) + "\n", "id,kind,seal_numbers\n",
                               "id,status,reason\n"]))
def test_fuzz_csv_importer_raises_only_bridge_errors(tmp_path: Path, text: str,
                                                     header: str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text(header + text, encoding="utf-8", newline="")
    calls: list[Callable[[], Any]] = [
        lambda: import_document(str(path), doc_type="roster", category="pow"),
        lambda: import_document(str(path), doc_type="roster", category="remains"),
        lambda: import_document(str(path), doc_type="manifest"),
        lambda: import_acks(str(path)),
    ]
    for call in calls:
        try:
            call()
        except BridgeError as exc:
            assert str(exc)
            if isinstance(exc, ImportErrors):
                assert all(isinstance(e, RowError) and e.message for e in exc.errors)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_bytes_as_csv_and_xlsx(tmp_path: Path, data: bytes) -> None:
    for name in ("fuzz.csv", "fuzz.xlsx"):
        path = tmp_path / name
        path.write_bytes(data)
        try:
            import_document(str(path), doc_type="manifest")
        except BridgeError:
            pass


def test_importers_stay_pure() -> None:
    code = ("import sys, bridge.records.importers, bridge.records.categories; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('asyncio', 'aiohttp', 'sqlite3', '_sqlite3')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised home whose daemon is NOT running."""
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "alpha"), "init", "--party",
                                       "alpha"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return tmp_path / "alpha"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Every call that would reach a daemon, recorded (and answered) instead."""
    made: list[tuple[str, Any]] = []

    def submit(self: BridgeClient, type: str, to: str, items: Any, meta: Any = None,
               id: str | None = None) -> dict[str, Any]:
        made.append(("submit", {"type": type, "to": to, "items": list(items), "meta": meta}))
        return {"id": id or "D-1", "to": to, "items": len(made[-1][1]["items"])}

    def acknowledge(self: BridgeClient, id: str, items: Any = None, all: str | None = None,
                    reason: str | None = None) -> dict[str, Any]:
        made.append(("ack", {"id": id, "items": list(items or ()), "all": all}))
        return {"ack_id": "A-1", "items": len(made[-1][1]["items"])}

    monkeypatch.setattr(BridgeClient, "submit_document", submit)
    monkeypatch.setattr(BridgeClient, "acknowledge", acknowledge)
    yield made


def bridge(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_send_bad_csv_lists_every_bad_row_and_sends_nothing(home: Path) -> None:
    # No fake client here: the daemon is simply not running. The command must fail on the
    # rows (exit 1), never get as far as looking for the daemon (that would be exit 3).
    bad = EXAMPLES / "roster-pow-with-errors.csv"
    code, out, err = bridge(home, "send", "roster", str(bad), "--to", "beta", "--category",
                            "pow")
    assert code == 1, out + err
    expected = import_errors(bad)
    for e in expected.errors:
        assert str(e) in err
    assert f"{expected.bad_rows} bad rows" in err and "daemon" not in err
    assert not (home / "bridge.sock").exists() and out == ""


@pytest.fixture
def checking(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A daemon's submission as far as its record check: refused as the daemon refuses it
    (``validate_submission``, the same 400), else recorded as committed."""
    committed: list[dict[str, Any]] = []

    def submit(self: BridgeClient, type: str, to: str, items: Any, meta: Any = None,
               id: str | None = None) -> dict[str, Any]:
        items = list(items)
        try:
            validate_submission(type, meta, items)
        except InputError as err:
            raise ApiError(400, err.code, err.detail, err.field) from None
        committed.append({"type": type, "items": items, "meta": meta})
        return {"id": id or "D-1", "to": to, "items": len(items)}

    monkeypatch.setattr(BridgeClient, "submit_document", submit)
    yield committed


def test_send_bad_csv_refused_by_the_daemon_check_lists_every_bad_row_commits_nothing(
        home: Path, checking: list[dict[str, Any]]) -> None:
    for category in CATEGORIES:
        bad = EXAMPLES / f"roster-{category}-with-errors.csv"
        code, _, err = bridge(home, "send", "roster", str(bad), "--to", "beta", "--category",
                              category)
        expected = import_errors(bad, category=category)
        assert code == 1, err
        assert all(str(e) in err for e in expected.errors), err
        assert f"{expected.bad_rows} bad rows" in err
    bad = EXAMPLES / "manifest-remains-with-errors.csv"
    code, _, err = bridge(home, "send", "manifest", str(bad), "--to", "beta")
    assert code == 1
    assert all(str(e) in err for e in import_errors(bad, doc_type="manifest",
                                                    category=None).errors), err
    assert checking == []


def test_send_good_csv_is_checked_once_by_the_daemon(
        home: Path, checking: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[int] = []
    real = categories.check_records

    def counted(*args: Any, **kwargs: Any) -> Any:
        checked.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(categories, "check_records", counted)  # the daemon's check
    monkeypatch.setattr(tables, "check_records", counted)  # the import's
    code, out, err = bridge(home, "send", "roster", str(EXAMPLES / "roster-pow.csv"), "--to",
                            "beta", "--category", "pow", "--id", "R-1")
    assert code == 0 and out.strip() == "R-1", err
    assert checked == [8] and len(checking[0]["items"]) == 8  # the daemon's check, no other


def test_send_daemon_refusal_the_import_does_not_see_names_its_csv_row(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: BridgeClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ApiError(400, "invalid_input", "does not match the pattern", "items[2].surname")

    monkeypatch.setattr(BridgeClient, "submit_document", refuse)
    code, _, err = bridge(home, "send", "roster", str(EXAMPLES / "roster-pow.csv"), "--to",
                          "beta", "--category", "pow")
    assert code == 1
    assert "1 bad row" in err and "row 4, surname: does not match the pattern" in err, err


def test_send_csv_whose_meta_changes_the_category_is_checked_before_the_daemon(
        home: Path, calls: list[Any]) -> None:
    """``--set category=...`` makes the daemon check another schema (or none): the rows are
    checked here by the one the import used, and a bad file never reaches the daemon."""
    code, _, err = bridge(home, "send", "roster",
                          str(EXAMPLES / "roster-civilian_detainee-with-errors.csv"), "--to",
                          "beta", "--category", "civilian_detainee", "--set", "category=other")
    assert code == 1 and "row " in err
    assert calls == []


def test_send_good_csv_reaches_for_the_daemon(home: Path) -> None:
    code, _, err = bridge(home, "send", "roster", str(EXAMPLES / "roster-pow.csv"), "--to",
                          "beta", "--category", "pow")
    assert code == 3, err  # every row good; only then is the (absent) daemon called


def test_send_csv_xlsx_and_json(home: Path, calls: list[tuple[str, Any]]) -> None:
    for name in ("roster-pow.csv", "roster-pow.xlsx"):
        code, out, err = bridge(home, "send", "roster", str(EXAMPLES / name), "--to", "beta",
                                "--category", "pow", "--id", "R-7")
        assert code == 0, err
        assert out.strip() == "R-7"
    (_, csv_call), (_, xlsx_call) = calls
    assert csv_call == xlsx_call
    assert csv_call["meta"] == {"category": "pow"} and len(csv_call["items"]) == 8
    calls.clear()
    code, _, err = bridge(home, "send", "manifest", str(EXAMPLES / "manifest-remains.json"),
                          "--to", "beta")
    assert code == 0, err
    assert calls[0][1]["meta"]["batch"] == 7 and len(calls[0][1]["items"]) == 6


def test_send_json_as_before(home: Path, tmp_path: Path, calls: list[tuple[str, Any]]) -> None:
    items = [{"id": "P-1", "surname": "Testname1", "eligibility": {"seriously_ill": True}}]
    path = tmp_path / "generic.json"
    path.write_text(json.dumps(items))
    code, _, err = bridge(home, "send", "roster", str(path), "--to", "beta")
    assert code == 0, err
    assert calls == [("submit", {"type": "roster", "to": "beta", "items": items, "meta": None})]


def test_send_usage_errors(home: Path, calls: list[Any]) -> None:
    csv_roster = str(EXAMPLES / "roster-pow.csv")
    assert bridge(home, "send", "roster", csv_roster, "--to", "beta")[0] == 2
    assert bridge(home, "send", "roster", csv_roster, "--to", "beta", "--category",
                  "prisoners")[0] == 2
    assert bridge(home, "send", "manifest", str(EXAMPLES / "manifest-remains.csv"), "--to",
                  "beta", "--category", "pow")[0] == 2
    assert calls == []


def test_send_json_output_lists_the_rows(home: Path) -> None:
    code, out, _ = bridge(home, "send", "roster", str(EXAMPLES / "roster-pow-with-errors.csv"),
                          "--to", "beta", "--category", "pow", "--json")
    assert code == 1
    body = json.loads(out)["error"]
    assert body["code"] == "invalid_rows" and body["bad_rows"] == 7
    assert body["errors"][0] == {"row": 3, "column": "D", "field": "rank",
                                 "message": "required field is missing"}


def test_ack_file(home: Path, calls: list[tuple[str, Any]]) -> None:
    code, out, err = bridge(home, "ack", "MANIFEST-7", "--file",
                            str(EXAMPLES / "acks-manifest-remains.csv"))
    assert code == 0, err
    assert "Acknowledged 6 item(s) of MANIFEST-7" in out
    (kind, call), = calls
    assert kind == "ack" and call["id"] == "MANIFEST-7" and call["all"] is None
    assert call["items"] == import_acks(str(EXAMPLES / "acks-manifest-remains.csv"))


def test_ack_file_with_bad_rows_sends_nothing(home: Path, tmp_path: Path,
                                              calls: list[Any]) -> None:
    path = write_csv(tmp_path / "a.csv", [["id", "status"], ["BAG-1", "LOST"],
                                          ["BAG-2", "RECEIVED"], ["BAG-2", "RECEIVED"]])
    code, _, err = bridge(home, "ack", "MANIFEST-7", "--file", str(path))
    assert code == 1
    assert "row 2, column B (status): unknown status; one of: RECEIVED" in err
    assert "LOST" not in err
    assert "row 4, column A (id): item 'BAG-2' is given twice (first on row 3)" in err
    assert calls == []
    assert bridge(home, "ack", "MANIFEST-7", "--file", str(path), "--all", "RECEIVED")[0] == 2
    assert bridge(home, "ack", "MANIFEST-7", "--file", str(path), "--reason", "x")[0] == 2
