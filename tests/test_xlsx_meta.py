"""An XLSX manifest or roster carries its meta in a sheet named ``meta`` (a key and a value a
row): declared-versus-counted from a spreadsheet alone. The items come from the first other
sheet, wherever the meta sheet is."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bridge.core.errors import InputError
from bridge.records.importers import import_document

ITEMS = [["id", "kind", "category"], ["BAG-0001", "remains_package", "remains"],
         ["BAG-0002", "remains_package", "remains"]]


def workbook(path: Path, meta_rows: list[list[object]] | None, *, meta_first: bool) -> Path:
    book = openpyxl.Workbook()
    items = book.active
    items.title = "items"
    for row in ITEMS:
        items.append(row)
    if meta_rows is not None:
        meta = book.create_sheet("Meta", 0 if meta_first else 1)
        for row in meta_rows:
            meta.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize("meta_first", [True, False])
def test_a_meta_sheet_gives_the_manifest_its_meta(tmp_path: Path, meta_first: bool) -> None:
    path = workbook(tmp_path / "m.xlsx", [["key", "value"], ["agreement", "AGR-2026-03"],
                                          ["batch", 7], ["declared", '{"remains": 2}']],
                    meta_first=meta_first)
    sub = import_document(str(path), doc_type="manifest")
    assert sub.meta == {"agreement": "AGR-2026-03", "batch": 7, "declared": {"remains": 2}}
    assert [i["id"] for i in sub.items] == ["BAG-0001", "BAG-0002"]


def test_without_a_meta_sheet_nothing_changes(tmp_path: Path) -> None:
    sub = import_document(str(workbook(tmp_path / "m.xlsx", None, meta_first=False)),
                          doc_type="manifest")
    assert sub.meta is None and len(sub.items) == 2


def test_a_meta_value_that_is_broken_json_names_its_row(tmp_path: Path) -> None:
    path = workbook(tmp_path / "m.xlsx", [["declared", '{"remains": 2']], meta_first=False)
    with pytest.raises(InputError, match="sheet meta, row 1"):
        import_document(str(path), doc_type="manifest")
