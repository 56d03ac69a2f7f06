"""A sheet sent under the wrong category (``--category remains`` on a POW roster): the field
list is said once, not once per unknown column, and the category the header fits is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.records.importers import ImportErrors, import_document

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _errors(path: Path, category: str) -> ImportErrors:
    with pytest.raises(ImportErrors) as err:
        import_document(str(path), doc_type="roster", category=category)
    return err.value


def test_a_pow_sheet_sent_as_remains_lists_the_fields_once_and_names_pow() -> None:
    err = _errors(EXAMPLES / "roster-pow.csv", "remains")
    text = str(err)
    assert text.count("the fields of a remains record are") == 1, text
    assert "category pow" in text, text
    assert "unknown column 'surname'" in text  # each column still named, once


def test_a_header_no_category_fits_gets_no_category_hint(tmp_path: Path) -> None:
    sheet = tmp_path / "odd.csv"
    sheet.write_text("id,colour,flavour\nX-1,red,sweet\n", encoding="utf-8")
    text = str(_errors(sheet, "pow"))
    assert text.count("the fields of a pow record are") == 1, text
    assert "This header fits" not in text, text
