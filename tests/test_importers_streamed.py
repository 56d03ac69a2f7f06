"""A CSV roster read as it is sent (``importers.streamed``): its count, announced before the
first record, is the import's count of the same file, and any surprise while it is read on
(a cell that does not convert, a file that changed between the count and the sending) stops the
stream with ``NotStreamed`` rather than send a record the count did not expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.records.importers import import_document
from bridge.records.importers.limits import LIMITS
from bridge.records.importers.streamed import NotStreamed, _quick_count, roster_stream

HEADER = ("id,surname,first_names,category,capture_place,seriously_ill,rank,date_of_birth,"
          "service_number,power_depended_on,capture_date,\n")
REST = "private,1990-01-02,AL-1,Alpha,2026-03-02,"  # the required fields of a pow record


def write(path: Path, *rows: str) -> str:
    """The header, then each row: its first six cells, the required ones unless it is blank,
    and the cell of the column with no name."""
    lines = []
    for row in rows:
        *cells, unnamed = row.split(",")
        required = ",,,,," if all(not c.strip() for c in cells[:3]) else REST.rstrip(",")
        lines.append(",".join(cells) + "," + required + "," + unnamed)
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


TRICKY = ("", " , ,  ,,,,",
          ",,,pow,,,",  # only the category, which every record gets anyway: blank
          "POW-2,Belcastro,Bren,,Sector 9,yes,",
          ",,,,,,\u00a0",  # a no-break space in the column with no name: blank
          "POW-3,Corvin,Cael,,,,")


def test_count_is_the_imports_with_blank_rows_spaces_and_a_row_of_only_the_default(
        tmp_path: Path) -> None:
    """A row whose only value is its category (the default every record gets) is blank to the
    import: it must be blank to the count too, or the stream would announce one too many. (A
    quoted cell: the rows are counted as the row loop reads them.)"""
    path = write(tmp_path / "r.csv", 'POW-1,Avenor,"Ari",pow,Sector 9,no,', *TRICKY)
    stream = roster_stream(path, "pow")
    assert stream is not None
    records = list(stream)
    expected = import_document(path, doc_type="roster", category="pow", check=False)
    assert len(stream) == len(expected.items) == 3
    assert records == expected.items and list(stream.rows) == list(expected.rows)


def test_a_quick_count_fooled_by_such_rows_stops_the_stream_instead_of_sending_it_short(
        tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "POW-1,Avenor,Ari,pow,Sector 9,no,", *TRICKY)
    stream = roster_stream(path, "pow")
    assert stream is not None and len(stream) == 5  # the lines that are not blank as bytes
    with pytest.raises(NotStreamed, match="3 records read, 5 counted"):
        list(stream)


def test_a_cell_that_does_not_convert_stops_the_stream_before_its_record(
        tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "POW-1,Avenor,Ari,,,no,", "POW-2,Belcastro,Bren,,,perhaps,",
                 "POW-3,Corvin,Cael,,,,")
    stream = roster_stream(path, "pow")
    assert stream is not None and len(stream) == 3
    sent = []
    with pytest.raises(NotStreamed, match="row 3"):
        for record in stream:
            sent.append(record["id"])
    assert sent == ["POW-1"]


def test_a_file_grown_after_its_count_stops_the_stream_before_the_extra_record(
        tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "POW-1,Avenor,Ari,,,,", "POW-2,Belcastro,Bren,,,,")
    stream = roster_stream(path, "pow")
    assert stream is not None and len(stream) == 2
    write(tmp_path / "r.csv", "POW-1,Avenor,Ari,,,,", "POW-2,Belcastro,Bren,,,,",
          "POW-3,Corvin,Cael,,,,")
    with pytest.raises(NotStreamed):
        assert len(list(stream)) <= 2


def test_a_file_shrunk_after_its_count_ends_the_stream_with_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "POW-1,Avenor,Ari,,,,", "POW-2,Belcastro,Bren,,,,")
    stream = roster_stream(path, "pow")
    assert stream is not None
    write(tmp_path / "r.csv", "POW-1,Avenor,Ari,,,,")
    with pytest.raises(NotStreamed, match="1 records read, 2 counted"):
        list(stream)


def test_a_header_with_a_problem_is_not_streamed(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,surnam,first_names\nPOW-1,Avenor,Ari\n", encoding="utf-8")
    assert roster_stream(str(path), "pow") is None


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_the_quick_count_of_an_unquoted_file_is_the_count_of_its_rows(
        tmp_path: Path, end: str) -> None:
    path = tmp_path / "r.csv"
    rows = ["", "POW-1,Avenor,Ari,,,no,", "", " , ,,,,,", "POW-2,Belcastro,Bren,,,,",
            "POW-3,Corvin,Cael,,,,"]
    write(path, *rows)
    path.write_bytes(path.read_bytes().replace(b"\n", end.encode()).rstrip())  # no last end
    expected = import_document(str(path), doc_type="roster", category="pow", check=False)
    assert _quick_count(str(path), 1, LIMITS) == len(expected.items) == 3


def test_a_quoted_cell_is_counted_by_the_row_loop(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    write(path, 'POW-1,Avenor,"Ari\nDario",,,no,', "POW-2,Belcastro,Bren,,,,")
    assert _quick_count(str(path), 1, LIMITS) is None
    stream = roster_stream(str(path), "pow")
    assert stream is not None and len(stream) == 2 == len(list(stream))
