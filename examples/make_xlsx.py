"""Write examples/roster-pow.xlsx from examples/roster-pow.csv, as a spreadsheet would hold it.

    .venv/bin/python examples/make_xlsx.py

The cells are typed the way a person typing into Excel or LibreOffice gets them: full dates
become date cells, yes/no become TRUE/FALSE, whole numbers become numbers; partial dates
(``2003-07``, ``1984``) and everything else stay text. The importer must read both files to the
same records (a test checks it). Synthetic data only: invented names and places.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "roster-pow.csv"
TARGET = HERE / "roster-pow.xlsx"
# A fixed timestamp keeps the file byte-for-byte stable from one run to the next.
FIXED_TIME = datetime.datetime(2026, 11, 1, 12, 0, 0)


def typed(text: str) -> Any:
    if text == "":
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.date.fromisoformat(text)
    if text in ("yes", "no"):
        return text == "yes"
    if re.fullmatch(r"\d{1,9}", text):
        return int(text)
    return text


def main() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "POW roster"
    with SOURCE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    sheet.append(rows[0])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows[1:]:
        sheet.append([typed(v) for v in row])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime.date):
                cell.number_format = "yyyy-mm-dd"
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(width + 2, 40)
    book.properties.created = FIXED_TIME
    book.properties.modified = FIXED_TIME
    book.save(TARGET)
    print(f"wrote {TARGET.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
