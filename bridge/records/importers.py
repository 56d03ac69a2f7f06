"""Imports: CSV, XLSX and JSON files into the items of a roster or manifest, and spreadsheets of
acknowledgements. Commissions keep their lists in spreadsheets (DESIGN §5).

A file is recognised by its extension. In a table the first non-blank row is the header: it
names the fields (``Date of birth`` reads as ``date_of_birth``; ``identification.status`` fills
a nested field). Cells convert by the record schema's types: whole numbers, true/false (also
yes/no, 1/0), lists split on ``;``, everything else text with the surrounding spaces removed; a
blank cell is an absent field.

Every problem is reported with its row as a spreadsheet shows it (the header is row 1), its
column (letter and field name) and what is wrong: all bad rows, not just the first (the first
:data:`MAX_LISTED` problems are described, every bad row is counted). Nothing is returned unless
every row is good: :class:`ImportErrors` lists them instead.

Pure: no asyncio, aiohttp or sqlite3; the only I/O is reading the one file named.
"""

from __future__ import annotations

import csv
import datetime
import difflib
import json
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.documents import ACK_STATUSES, AckItem
from bridge.core.errors import InputError, UsageError
from bridge.records.categories import (
    CATEGORIES,
    DNA_ADVICE,
    DNA_FIELD_NAME,
    MANIFEST_ITEM,
    CheckResult,
    FieldInfo,
    RecordSchema,
    check_records,
    check_submission,
    record_schema,
    roster_schema,
)

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json"}
TABLE_FORMATS = ("csv", "xlsx")
MAX_LISTED = 1000
LIST_SEPARATOR = ";"
ACK_COLUMNS = ("id", "status", "reason", "evidence")
_MIB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class ImportLimits:
    """Every bound on what an import reads, in one place (README, "Import limits").

    A file from a spreadsheet is data from outside: a CSV of one 200 MB line of empty cells, an
    XLSX whose shared strings inflate to 300 MB, or a sheet declaring 70 million empty rows
    would each take gigabytes if read whole. Each bound is checked while the file streams, before
    the data it guards is held in memory; an :class:`ImportLimitError` names the limit it hit
    (and the row or line). The defaults are far above a real roster (a few thousand rows, a
    dozen columns) and allow the largest document (``max_items``).
    """

    max_file_bytes: int = 512 * _MIB   # a CSV or XLSX file as it is on disk
    max_rows: int = 1_048_576          # rows read, blank ones included (a spreadsheet's own
    #                                    maximum), the header row too
    max_items: int = 1_000_000         # records: the most items a document holds
    #                                    (document.schema.json)
    max_columns: int = 256             # header columns
    max_cells: int = 20_000_000        # cells read in all, blank ones included
    max_cell_chars: int = 100_000      # characters in one CSV cell: far above any field's limit
    max_line_chars: int = 1 * _MIB     # characters in one CSV record (however many lines a
    #                                    quoted cell spans)
    max_zip_members: int = 10_000      # parts of an XLSX (a workbook has a few dozen)
    max_part_bytes: int = 8 * _MIB     # inflated size of any other XLSX part (styles, the
    #                                    workbook...): each is parsed whole, into objects of
    #                                    about 1 KB per element (Excel's 64,000 styles fit)
    max_strings_bytes: int = 64 * _MIB  # inflated size of the shared strings (read whole)
    max_shared_strings: int = 1_000_000  # shared strings (as many as a document has items)
    max_sheet_bytes: int = 1024 * _MIB  # inflated size of a worksheet (it streams)
    max_inflate_ratio: int = 100       # inflated / compressed size of a part over 1 MiB (a zip
    #                                    bomb; ordinary sheets deflate about 10:1)
    max_json_bytes: int = 128 * _MIB   # a JSON file or standard input
    max_json_containers: int = 5_000_000  # JSON arrays and objects in all
    max_json_depth: int = 64           # nesting of JSON arrays and objects

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if type(value) is not int or value < 1:
                raise UsageError(f"import limit {name} must be a positive whole number")


LIMITS = ImportLimits()


class ImportLimitError(InputError):
    """A file passed one of the :class:`ImportLimits`; ``limit`` names it. Nothing was read
    past that point, and nothing was imported."""

    code = "import_limit"

    def __init__(self, source: str, what: str, *, limit: str, value: int,
                 where: str | None = None) -> None:
        self.limit = limit
        at = f"{where}: " if where else ""
        message = f"{source}: {at}{what} (limit {limit} = {value:,}); nothing was imported"
        super().__init__(message, field=where or "file", code=self.code)
        self.message = self.detail = message  # the location is in it already


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
# The spellings a spreadsheet produces (TRUE, Yes, no...), for a look-up without lower().
_BOOLEAN_WORDS = {v: w in _TRUE for w in _TRUE | _FALSE
                  for v in (w, w.upper(), w.capitalize())}
_INTEGER = re.compile(r"[+-]?\d{1,18}\Z")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63})?\Z")


# ---------------------------------------------------------------- problems


@dataclass(frozen=True, kw_only=True)
class RowError:
    """One problem. In a table: ``row`` (the header is row 1), ``column`` (its letter) and
    ``field`` (its name). In a JSON file: ``index`` (position in ``items``) and ``field`` (a path
    inside the item)."""

    message: str
    row: int | None = None
    column: str | None = None
    field: str | None = None
    index: int | None = None

    def location(self) -> str:
        if self.row is not None:
            where = f"row {self.row}"
            if self.column is not None:
                where += f", column {self.column}" + (f" ({self.field})" if self.field else "")
            elif self.field:
                where += f", {self.field}"
            return where
        if self.index is not None:
            return f"items[{self.index}]" + (f".{self.field}" if self.field else "")
        return self.field or "file"

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("row", self.row), ("column", self.column),
                                  ("field", self.field), ("index", self.index),
                                  ("message", self.message)) if v is not None}


class ImportErrors(InputError):
    """A file has bad rows; ``errors`` describes them (at most :data:`MAX_LISTED`) and
    ``bad_rows`` counts them all. Nothing was imported."""

    code = "invalid_rows"

    def __init__(self, source: str, errors: Sequence[RowError], *, bad_rows: int,
                 header: bool = False) -> None:
        self.errors = tuple(errors)
        self.bad_rows = bad_rows
        self.source = source
        what = [f"{bad_rows} bad row{'s' if bad_rows != 1 else ''}"] if bad_rows else []
        if header:
            what.insert(0, "a bad header row")
        summary = f"{source}: {' and '.join(what) or 'problems'}; nothing was imported"
        lines = [summary, *(f"  {e}" for e in self.errors)]
        if len(self.errors) >= MAX_LISTED:
            lines.append(f"  (only the first {MAX_LISTED} problems are listed)")
        super().__init__("\n".join(lines), code=self.code)


# ---------------------------------------------------------------- what an import gives


@dataclass(frozen=True, kw_only=True)
class Submission:
    """The items (and meta) of a roster or manifest read from a file, every row good.

    ``schema`` names the record schema the items were checked against, or is None when the
    items are generic (a JSON roster of no known category, manifest items without a kind):
    those are sent as they are, as before record schemas existed.
    """

    items: list[dict[str, Any]]
    meta: dict[str, Any] | None
    format: str
    schema: str | None


def file_format(path: str) -> str:
    """``csv``, ``xlsx`` or ``json``, from the extension ("-", standard input, is JSON)."""
    if path == "-":
        return "json"
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if suffix in (".xls", ".ods", ".numbers"):
        raise InputError(f"{path}: {suffix} files are not read; save it as .xlsx or .csv",
                         field="file")
    raise InputError(f"{path}: unknown file type {suffix or '(no extension)'!r}; use .csv, "
                     ".xlsx or .json", field="file")


# ---------------------------------------------------------------- reading tables


def _column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the column as a spreadsheet labels it."""
    n, letters = index + 1, ""
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("A") + r) + letters
    return letters


def _check_file_size(path: str, limits: ImportLimits) -> None:
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    if size > limits.max_file_bytes:
        raise ImportLimitError(path, f"the file is {size:,} bytes", limit="max_file_bytes",
                               value=limits.max_file_bytes)


def _count(n: int, row: list[Any], cells: int, source: str, limits: ImportLimits) -> int:
    """Cells read so far, with row ``n``; refused past ``max_rows`` rows or ``max_cells`` cells
    (blank ones count: a sheet of empty rows costs as much to read as any other)."""
    cells += len(row)
    if n > limits.max_rows:
        raise ImportLimitError(source, "too many rows (blank rows count too)",
                               limit="max_rows", value=limits.max_rows, where=f"row {n}")
    if cells > limits.max_cells:
        raise ImportLimitError(source, f"too many cells in all (this row has {len(row):,}; "
                               "blank cells count too)", limit="max_cells",
                               value=limits.max_cells, where=f"row {n}")
    return cells


class _RecordTooLong(Exception):
    """Raised through csv.reader by :func:`_bounded_lines`."""


def _bounded_lines(f: Any, limit: int, used: list[int]) -> Iterator[str]:
    """The lines of a text file for csv.reader, each read with ``readline(n)`` so that no more
    than ``limit`` characters of one record (a row, however many lines its quoted cells span)
    are ever buffered: a 200 MB line is refused after its first ``limit`` characters, before
    csv splits it into cells. ``used[0]`` counts the record's characters; the caller resets it
    after each record. (A generator with a list cell: the cheapest per-line check there is.)"""
    readline = f.readline
    while line := readline(limit - used[0] + 1):
        used[0] += len(line)
        if used[0] > limit:
            raise _RecordTooLong
        yield line


def _csv_rows(path: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    """Rows of a CSV file, numbered as a spreadsheet numbers them (one per record, however
    many lines a quoted cell spans). UTF-8, with or without the byte-order mark that Excel
    writes; comma-separated, or semicolon- or tab-separated when the header says so (as
    spreadsheets set to some locales save)."""
    _check_file_size(path, limits)
    # csv's own cell limit is process-wide: set for this read, restored when it ends.
    previous = csv.field_size_limit(limits.max_cell_chars)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = f.readline(limits.max_line_chars)
            delimiter = ","
            if "," not in first:
                delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
            f.seek(0)  # resets the decoder too: the byte-order mark is skipped again
            used = [0]
            reader = csv.reader(_bounded_lines(f, limits.max_line_chars, used),
                                delimiter=delimiter)
            n = cells = 0
            try:
                for n, row in enumerate(reader, start=1):
                    used[0] = 0
                    cells = _count(n, row, cells, path, limits)
                    yield n, row
            except _RecordTooLong:
                raise ImportLimitError(path, "a row longer than the limit", where=(
                    f"row {n + 1} (line {reader.line_num + 1})"), limit="max_line_chars",
                    value=limits.max_line_chars) from None
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise ImportLimitError(path, "a cell longer than the limit",
                                           where=f"row {n + 1}", limit="max_cell_chars",
                                           value=limits.max_cell_chars) from None
                raise InputError(f"{path}: line {reader.line_num} cannot be read as CSV: "
                                 f"{exc}", field=f"line {reader.line_num}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (in the spreadsheet, save as \"CSV UTF-8\")",
                         field="file") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    finally:
        csv.field_size_limit(previous)


# ---------------------------------------------------------------- XLSX: the zip before openpyxl

# A row element, with or without a namespace prefix (<row r="1">, <x:row/>); a shared string.
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_STRING_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")
_CONTENT_TYPES = "[Content_Types].xml"
_SPREADSHEETML = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_WORKSHEET_TYPE = _SPREADSHEETML + "worksheet+xml"
_STRINGS_TYPE = _SPREADSHEETML + "sharedStrings+xml"
# XML declarations that could make a part inflate in the parser (entity expansion) or hide
# its elements from the byte scan: OOXML parts have no DTD (ECMA-376 Part 2, §8.1.4).
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)")
_XML_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([^"']*)""")
_EOCD = b"PK\x05\x06"  # end of central directory record (APPNOTE 4.3.16)


def _not_readable(path: str, why: str) -> InputError:
    return InputError(f"{path} is not a readable XLSX workbook ({why})", field="file")


def _zip_directory(f: Any, path: str) -> tuple[int, int]:
    """Entry count and size of the central directory, from the end record, read before
    zipfile builds an object per entry (their memory is what the size bounds)."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(max(0, size - 22 - 0xFFFF))  # the record, then a comment of at most 64 KiB
    tail = f.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        raise _not_readable(path, "not a zip file")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:
        raise _not_readable(path, "a ZIP64 archive: an XLSX under the size limit never is one")
    return entries, cd_size


def _check_workbook(path: str, limits: ImportLimits) -> None:
    """Every part of the zip, before openpyxl parses any: at most ``max_zip_members`` parts,
    each within its inflated-size limit as declared and as actually inflated (a streaming read
    that stops at the limit), none a zip bomb by ratio, no DTD, UTF-8, and no more row elements
    than ``max_rows`` (openpyxl reads a sheet without a dimension whole when it opens it)."""
    _check_file_size(path, limits)
    try:
        with open(path, "rb") as f:
            entries, cd_size = _zip_directory(f, path)
            if entries > limits.max_zip_members or cd_size > limits.max_zip_members * 1024:
                raise ImportLimitError(path, f"the workbook has {entries:,} parts",
                                       limit="max_zip_members", value=limits.max_zip_members)
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
                if len(infos) > limits.max_zip_members:
                    raise ImportLimitError(path, f"the workbook has {len(infos):,} parts",
                                           limit="max_zip_members",
                                           value=limits.max_zip_members)
                kinds = _part_kinds(zf, path, limits)
                for info in infos:
                    _check_part(zf, info, kinds.get(info.filename, ""), path, limits)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            zlib.error) as exc:  # a damaged or unsupported zip: CRC, compression method...
        raise _not_readable(path, str(exc)) from exc


def _part_kinds(zf: zipfile.ZipFile, path: str, limits: ImportLimits) -> dict[str, str]:
    """Part name -> content type, from the overrides of [Content_Types].xml (ECMA-376 Part 2,
    §10.1.2), itself checked first: the spreadsheet library finds the shared strings by their
    content type, whatever their name, so limits go by content type too."""
    try:
        info = zf.getinfo(_CONTENT_TYPES)
    except KeyError:
        raise _not_readable(path, f"no {_CONTENT_TYPES}") from None
    _check_part(zf, info, "", path, limits)  # no DTD, within the limits, before parsing
    import xml.etree.ElementTree as ElementTree

    try:
        # No DTD (just checked), so no entity expansion; expat fetches no external entity.
        root = ElementTree.fromstring(zf.read(info))  # noqa: S314
    except ElementTree.ParseError as exc:
        raise _not_readable(path, f"{_CONTENT_TYPES}: {exc}") from exc
    kinds = {}
    for element in root:
        if element.tag.rpartition("}")[2] == "Override":
            kinds[element.get("PartName", "").lstrip("/")] = element.get("ContentType", "")
    return kinds


def _part_limit(kind: str, limits: ImportLimits) -> tuple[str, int]:
    # Only worksheets stream; any other part is parsed whole and gets a smaller limit. A part
    # is a worksheet by its content type, not its name (a name can say anything).
    if kind == _WORKSHEET_TYPE:
        return "max_sheet_bytes", limits.max_sheet_bytes
    if kind == _STRINGS_TYPE:
        return "max_strings_bytes", limits.max_strings_bytes
    return "max_part_bytes", limits.max_part_bytes


def _check_part(zf: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str, path: str,
                limits: ImportLimits) -> None:
    name, cap = _part_limit(kind, limits)
    part = f"part {info.filename!r}"
    if info.file_size > cap:
        raise ImportLimitError(path, f"{part} inflates to {info.file_size:,} bytes",
                               limit=name, value=cap)
    ratio = info.file_size // max(info.compress_size, 1)
    if info.file_size > _MIB and ratio >= limits.max_inflate_ratio:
        raise ImportLimitError(path, f"{part} inflates {ratio:,} times (a zip bomb)",
                               limit="max_inflate_ratio", value=limits.max_inflate_ratio)
    inflated = rows = strings = 0
    carry = b""
    with zf.open(info) as member:
        while chunk := member.read(_MIB):
            if not inflated:
                _check_xml_start(chunk, path, part)
            inflated += len(chunk)
            if inflated > cap:  # zipfile stops at the declared size; this is the backstop
                raise ImportLimitError(path, f"{part} inflates to more than its limit",
                                       limit=name, value=cap)
            buffer = carry + chunk
            cut = buffer.rfind(b"<")
            # A tag cut by the chunk boundary is kept for the next round, so that it is
            # neither missed nor counted twice.
            carry = buffer[cut:] if cut >= len(buffer) - 64 else b""
            counted = _scan(buffer[:len(buffer) - len(carry)], path, part)
            rows, strings = rows + counted[0], strings + counted[1]
            _check_counts(rows, strings, path, part, limits)
    counted = _scan(carry, path, part)
    _check_counts(rows + counted[0], strings + counted[1], path, part, limits)


def _check_counts(rows: int, strings: int, path: str, part: str,
                  limits: ImportLimits) -> None:
    if rows > limits.max_rows:
        raise ImportLimitError(path, f"{part} has more row elements than the limit",
                               limit="max_rows", value=limits.max_rows)
    if strings > limits.max_shared_strings:
        raise ImportLimitError(path, f"{part} has more shared strings than the limit",
                               limit="max_shared_strings", value=limits.max_shared_strings)


def _check_xml_start(head: bytes, path: str, part: str) -> None:
    """A part that looks like XML in another encoding than UTF-8 is refused: the byte scan
    would not see its elements (openpyxl's parser would)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4]:
        raise _not_readable(path, f"{part} is not UTF-8")
    declared = _XML_ENCODING.match(head)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _not_readable(path, f"{part} is not UTF-8")


def _scan(data: bytes, path: str, part: str) -> tuple[int, int]:
    """Row elements and shared strings in ``data`` (every part is counted: a part can be
    given any name and content type)."""
    if _DTD.search(data):
        raise _not_readable(path, f"{part} has a DTD, which no workbook part may have")
    return len(_ROW_TAG.findall(data)), len(_STRING_TAG.findall(data))


def _xlsx_rows(path: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    """Rows of the first worksheet (read-only mode: rows stream from the file, never all in
    memory). Formulas give the value last saved with them."""
    _check_workbook(path, limits)
    # Imported here: only XLSX imports pay for loading it.
    import openpyxl  # type: ignore[import-untyped]

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many kinds on a damaged file
        raise _not_readable(path, str(exc)) from exc
    try:
        if not book.worksheets:
            raise InputError(f"{path} has no worksheet", field="file")
        sheet = book.worksheets[0]
        n = cells = 0
        try:
            for n, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = _count(n, row, cells, path, limits)
                yield n, list(row)
        except InputError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # a damaged sheet fails while it streams
            raise InputError(f"{path}: row {n + 1} cannot be read ({exc})",
                             field=f"row {n + 1}") from exc
    finally:
        book.close()


def _rows(path: str, fmt: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    return _csv_rows(path, limits) if fmt == "csv" else _xlsx_rows(path, limits)


def _blank(cell: Any) -> bool:
    return cell is None or (cell.__class__ is str and not cell.strip())


def header_name(cell: Any) -> str:
    """``" Date of birth "`` -> ``date_of_birth``: the field a header cell names."""
    text = "" if cell is None else str(cell)
    return re.sub(r"[\s-]+", "_", text.strip().lower())


# ---------------------------------------------------------------- cells


class _CellError(Exception):
    """A cell that does not convert; the message says why (never with a sensitive value)."""


def _got(cell: Any, info: FieldInfo | None) -> str:
    if info is not None and info.sensitive:
        return ""
    text = repr(cell)
    return f" (got {text if len(text) <= 40 else text[:37] + '...'})"


def _as_text(cell: Any, info: FieldInfo | None) -> str:
    """A non-text XLSX cell in a text field: what the spreadsheet shows."""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, datetime.datetime):
        if (info is not None and info.date) or cell.time() == datetime.time():
            return cell.date().isoformat()
        return cell.isoformat(sep=" ")
    if isinstance(cell, datetime.date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # 40037 typed as a number, stored as 40037.0
    return str(cell)


def _to_integer(cell: Any, info: FieldInfo | None) -> Any:
    if cell.__class__ is int:
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if cell.__class__ is str and _INTEGER.match(cell):
        return int(cell)
    raise _CellError(f"must be a whole number{_got(cell, info)}")


def _to_boolean(cell: Any, info: FieldInfo | None) -> Any:
    if isinstance(cell, bool):
        return cell
    if cell.__class__ is int and cell in (0, 1):
        return bool(cell)
    word = str(cell).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _CellError(f"must be true or false (also yes/no, 1/0){_got(cell, info)}")


def _to_list(cell: Any, info: FieldInfo | None) -> Any:
    text = cell if cell.__class__ is str else _as_text(cell, info)
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def _converter(info: FieldInfo | None) -> Callable[[Any, FieldInfo | None], Any] | None:
    """None for text (the common case, handled inline by the row loop)."""
    if info is None:
        return None
    return {"integer": _to_integer, "boolean": _to_boolean, "list": _to_list}.get(info.kind)


@dataclass(frozen=True, kw_only=True)
class _Column:
    index: int
    letter: str
    name: str
    info: FieldInfo | None
    convert: Callable[[Any, FieldInfo | None], Any] | None
    parent: str | None  # "identification" for "identification.status"
    child: str


# ---------------------------------------------------------------- tables of records


def _read_header(rows: Iterator[tuple[int, list[Any]]], source: str, limits: ImportLimits
                 ) -> tuple[int, list[Any]]:
    """The first non-blank row, without its trailing blank cells (a sheet's rows are as wide as
    its widest, or as its declared dimension), at most ``max_columns`` wide."""
    for n, cells in rows:
        if not all(_blank(c) for c in cells):
            end = len(cells)
            while _blank(cells[end - 1]):
                end -= 1
            cells = cells[:end]
            if len(cells) > limits.max_columns:
                raise ImportLimitError(source, f"the header has {len(cells):,} columns",
                                       limit="max_columns", value=limits.max_columns,
                                       where=f"row {n}")
            return n, cells
    raise InputError(f"{source} is empty: the first row must name the fields", field="file")


def _columns(header: list[Any], hrow: int, schema: RecordSchema,
             problems: list[RowError]) -> tuple[list[_Column], set[int]]:
    """The header's columns, and the positions of unnamed or refused ones (their cells are
    ignored, the header problem reported once)."""
    columns: list[_Column] = []
    skipped: set[int] = set()
    seen: dict[str, str] = {}
    known = list(schema.fields)
    for i, cell in enumerate(header):
        letter = _column_letter(i)
        name = header_name(cell)
        info = schema.fields.get(name)

        def refuse(message: str, field: str | None = name or None, at: int = i) -> None:
            problems.append(RowError(row=hrow, column=_column_letter(at), field=field,
                                     message=message))
            skipped.add(at)

        if not name:
            skipped.add(i)  # reported only if a row has a value in it
            continue
        if name in seen:
            refuse(f"the column {name!r} is named twice (also column {seen[name]})")
            continue
        seen[name] = letter
        if info is None and DNA_FIELD_NAME.search(name):
            refuse(DNA_ADVICE)
            continue
        if info is None or info.kind == "object":
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if info is not None:
                refuse(f"{name} is a group of fields: name its parts ({name}.…) as columns")
                continue
            if not schema.open or close or not _FIELD_NAME.match(name) or "." in name:
                fields = ", ".join(f for f in known if schema.fields[f].kind != "object")
                refuse(f"unknown column {name!r}{hint}" + ("" if close else
                       f" (the fields of {_label(schema)} are: {fields})"))
                continue
        parent, _, child = name.rpartition(".")
        columns.append(_Column(index=i, letter=letter, name=name, info=info,
                               convert=_converter(info), parent=parent or None, child=child))
    return columns, skipped


def _label(schema: RecordSchema) -> str:
    return f"a {schema.category} record" if schema.category else "a manifest item"


def _missing_columns(schema: RecordSchema, names: set[str], hrow: int,
                     defaults: Mapping[str, Any]) -> tuple[list[RowError], set[str]]:
    """Required fields that no column provides: said once about the header, not once a row."""
    problems, absent = [], set()
    have = names | set(defaults)
    groups = {n.split(".")[0] for n in have if "." in n}
    for f in schema.fields.values():
        parent = f.path.split(".")[0] if "." in f.path else None
        if not f.required or f.path in have or (parent is not None and parent not in groups):
            continue
        absent.add(f.path)
        problems.append(RowError(row=hrow, field=f.path,
                                 message=f"no {f.path} column: the field is required"))
    alts = schema.alternatives
    if alts and not any(a in have for a in alts):
        absent.update(alts)
        problems.append(RowError(row=hrow, field=alts[0], message=(
            f"no {' or '.join(alts)} column: one of them is required")))
    return problems, absent


def _table_records(path: str, fmt: str, schema: RecordSchema, defaults: Mapping[str, Any],
                   limits: ImportLimits) -> list[dict[str, Any]]:
    source = path
    rows = _rows(path, fmt, limits)
    hrow, header = _read_header(rows, source, limits)
    head_problems: list[RowError] = []
    columns, skipped = _columns(header, hrow, schema, head_problems)
    missing, absent = _missing_columns(schema, {c.name for c in columns}, hrow, defaults)
    head_problems.extend(missing)
    width = len(header)
    flat = [(c.index, c.name, c.convert, c.info,
             _BOOLEAN_WORDS if c.info is not None and c.info.kind == "boolean" else None)
            for c in columns if c.parent is None]
    nested = [c for c in columns if c.parent is not None]
    records: list[dict[str, Any]] = []
    row_of: list[int] = []
    cell_problems: list[RowError] = []
    cell_bad: set[int] = set()  # row numbers
    # (row, column position) of values under no name. Problems are kept up to the number
    # listed (a file of a million bad cells must not hold a million descriptions); every bad
    # row is still counted.
    unnamed: list[tuple[int, int]] = []
    max_chars = limits.max_cell_chars
    blank_names = [i for i in skipped if header_name(header[i]) == ""]
    base = len(defaults)
    # The hot loop: 100,000 rows of a dozen cells each. Text (most cells) is handled inline,
    # booleans by one dictionary look-up; only other types pay for a function call.
    for n, cells in rows:
        if len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        elif len(cells) > width:
            _unnamed(unnamed, cell_bad, n, range(width, len(cells)), cells)
        if blank_names:
            _unnamed(unnamed, cell_bad, n, blank_names, cells)
        record = dict(defaults)
        for i, name, convert, info, words in flat:
            cell = cells[i]
            if cell.__class__ is str:
                cell = cell.strip()
                if not cell:
                    continue
                if convert is None:
                    record[name] = cell if len(cell) <= max_chars else cell[:max_chars]
                    continue
                if words is not None and cell in words:
                    record[name] = words[cell]
                    continue
            elif cell is None:
                continue
            if convert is not None:
                try:
                    cell = convert(cell, info)
                except _CellError as exc:
                    # Kept as it is: the schema then fails on the same field, and that
                    # second report is dropped in favour of this one.
                    if len(cell_problems) < MAX_LISTED:
                        cell_problems.append(RowError(row=n, column=_column_letter(i),
                                                      field=name, message=str(exc)))
                    cell_bad.add(n)
            else:
                cell = _as_text(cell, info)
            if cell.__class__ is str and len(cell) > max_chars:
                cell = cell[:max_chars]  # the schema's length limit reports it
            record[name] = cell
        for c in nested:
            cell = cells[c.index]
            if _blank(cell):
                continue
            value = cell.strip() if cell.__class__ is str else cell
            if c.convert is not None:
                try:
                    value = c.convert(value, c.info)
                except _CellError as exc:
                    if len(cell_problems) < MAX_LISTED:
                        cell_problems.append(RowError(row=n, column=c.letter, field=c.name,
                                                      message=str(exc)))
                    cell_bad.add(n)
            elif value.__class__ is not str:
                value = _as_text(value, c.info)
            assert c.parent is not None
            group = record.setdefault(c.parent, {})
            if isinstance(group, dict):
                group[c.child] = value
        if len(record) == base:
            continue  # a blank row (often trailing ones): not a record
        if len(records) >= limits.max_items:
            raise ImportLimitError(source, "too many records", limit="max_items",
                                   value=limits.max_items, where=f"row {n}")
        records.append(record)
        row_of.append(n)
    for n, i in unnamed:
        # A value under no name would be silently dropped: say so instead.
        cell_problems.append(RowError(row=n, column=_column_letter(i), message=(
            f"a value in a column with no name in row {hrow}: name the column, or clear it")))
    result = check_records(schema, records, limit=MAX_LISTED, values=True)
    row_problems = _table_errors(result, row_of, columns, absent)
    problems = _merge(head_problems, cell_problems, row_problems)
    bad_rows = len({row_of[i] for i in result.bad} | cell_bad)
    if problems or bad_rows:
        raise ImportErrors(source, problems[:MAX_LISTED], bad_rows=bad_rows,
                           header=bool(head_problems))
    return records


def _unnamed(unnamed: list[tuple[int, int]], bad: set[int], n: int, positions: Iterable[int],
             cells: list[Any]) -> None:
    """Values of row ``n`` under no name: the row is bad, and the first few are described."""
    for i in positions:
        if not _blank(cells[i]):
            bad.add(n)
            if len(unnamed) < MAX_LISTED:
                unnamed.append((n, i))


def _table_errors(result: CheckResult, row_of: Sequence[int], columns: Sequence[_Column],
                  absent: set[str]) -> list[RowError]:
    by_name = {c.name: c for c in columns}
    out = []
    for e in result.errors:
        if e.code == "missing" and e.field in absent:
            continue  # the header row already says the whole column is missing
        name = re.sub(r"\[\d+\]", "", e.field)
        col = by_name.get(name) or next(
            (c for c in columns if c.parent is not None and c.parent == name), None)
        message = e.message
        if e.code == "duplicate_id" and e.first is not None:
            message += f" (first on row {row_of[e.first]})"
        out.append(RowError(row=row_of[e.index], column=col.letter if col else None,
                            field=name or None, message=message))
    return out


def _merge(head: list[RowError], cells: list[RowError], rows: list[RowError]
           ) -> list[RowError]:
    """Header problems first, then row by row in column order; one problem per cell (a cell
    that did not convert is not reported a second time by the schema)."""
    seen: set[tuple[int | None, str | None]] = set()
    body = []
    for e in [*cells, *rows]:
        key = (e.row, e.field or e.column)
        if key in seen:
            continue
        seen.add(key)
        body.append(e)
    body.sort(key=lambda e: (e.row or 0, len(e.column or ""), e.column or ""))
    return [*head, *body]


# ---------------------------------------------------------------- JSON


def _read_json_text(path: str, name: str, limits: ImportLimits) -> str:
    """At most ``max_json_bytes`` of the file (or standard input), as UTF-8 text: the limit is
    checked before the text is held, never after."""
    cap = limits.max_json_bytes
    try:
        if path == "-":
            data = sys.stdin.buffer.read(cap + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(cap + 1)
        if len(data) > cap:
            raise ImportLimitError(name, "more bytes than the limit", limit="max_json_bytes",
                                   value=cap)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from exc


# A JSON string (RFC 8259 §7), escapes included: what lies between is structure.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SAME_BRACKETS = str.maketrans("{}", "[]")


def _check_json_shape(text: str, name: str, limits: ImportLimits) -> None:
    """Count arrays and objects and measure their nesting before json.loads builds any: a
    64 MB file of ``[]`` would otherwise become a million Python lists a megabyte. Scans
    run at C speed (regular expressions and str methods), a pass per level of nesting."""
    structure = _JSON_STRING.sub("", text)
    containers = structure.count("[") + structure.count("{")
    if containers > limits.max_json_containers:
        raise ImportLimitError(name, f"{containers:,} arrays and objects",
                               limit="max_json_containers", value=limits.max_json_containers)
    # Innermost pairs are removed one level a pass; what is left after max_json_depth
    # passes is nested deeper (or does not pair up, which json.loads then reports).
    brackets = _NOT_BRACKET.sub("", structure).translate(_SAME_BRACKETS)
    for _ in range(limits.max_json_depth):
        inner = brackets.replace("[]", "")
        if inner == brackets:
            return
        brackets = inner
    if brackets:
        raise ImportLimitError(name, "arrays and objects nested deeper than the limit",
                               limit="max_json_depth", value=limits.max_json_depth)


def load_json_value(path: str, *, limits: ImportLimits = LIMITS) -> Any:
    """The JSON value of a file ("-" is stdin) within the JSON limits: every JSON file an
    import reads (a submission, ``send --meta``) comes through here."""
    name = "standard input" if path == "-" else path
    text = _read_json_text(path, name, limits)
    _check_json_shape(text, name, limits)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from exc
    except RecursionError as exc:
        raise InputError(f"{name} is nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise InputError(f"{name} is not valid JSON: {exc}") from exc


def load_json_submission(path: str, *, limits: ImportLimits = LIMITS
                         ) -> tuple[list[Any], dict[str, Any] | None]:
    """Read ``{"meta": {...}, "items": [...]}`` or a bare list of items ("-" is stdin)."""
    name = "standard input" if path == "-" else path
    value = load_json_value(path, limits=limits)
    if isinstance(value, list):
        return value, None
    if not isinstance(value, dict):
        raise InputError(f"{name} must hold a list of items or an object "
                         '{"meta": {...}, "items": [...]}')
    extra = sorted(set(value) - {"meta", "items"})
    if extra:
        raise InputError(f"{name}: unexpected top-level key(s) {', '.join(extra)} (only "
                         '"meta" and "items"; give the type, --to and --id on the command line)',
                         field=extra[0])
    items = value.get("items")
    if not isinstance(items, list):
        raise InputError(f"{name}: \"items\" must be a list", field="items")
    meta = value.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InputError(f"{name}: \"meta\" must be an object", field="meta")
    return items, meta


def _json_submission(path: str, doc_type: str, category: str | None,
                     limits: ImportLimits) -> Submission:
    name = "standard input" if path == "-" else path
    items, meta = load_json_submission(path, limits=limits)
    if doc_type == "roster":
        declared = meta.get("category") if meta else None
        if category is not None and declared is not None and declared != category:
            raise InputError(f"{name}: meta.category is {declared!r}, but --category says "
                             f"{category!r}", field="meta.category")
        category = category or (declared if declared in CATEGORIES else None)
        if category is not None:
            roster_schema(category)  # an unknown --category is refused here, by name
            meta = {**(meta or {}), "category": category}
            for item in items:
                # Each record carries its category (DESIGN §6); the file may leave it to meta.
                if isinstance(item, dict) and "category" not in item:
                    item["category"] = category
    result = check_submission(doc_type, meta, items, limit=MAX_LISTED, values=True)
    if result is None:
        return Submission(items=items, meta=meta, format="json", schema=None)
    if not result.ok:
        errors = []
        for e in result.errors:
            message = e.message
            if e.code == "duplicate_id" and e.first is not None:
                message += f" (first at items[{e.first}])"
            errors.append(RowError(index=e.index, field=e.field or None, message=message))
        raise ImportErrors(name, errors, bad_rows=len(result.bad))
    schema = f"roster-{category}" if doc_type == "roster" else MANIFEST_ITEM
    return Submission(items=items, meta=meta, format="json", schema=schema)


# ---------------------------------------------------------------- entry points


def import_document(path: str, *, doc_type: str, category: str | None = None,
                    limits: ImportLimits = LIMITS) -> Submission:
    """The items of a roster or manifest from ``path`` (CSV, XLSX or JSON), every row checked.

    A roster from a table needs its ``category`` (one of :data:`CATEGORIES`), which also goes
    into ``meta.category`` and into each record that has no category column. A JSON roster
    takes it from ``category`` or its own ``meta.category``; without one (or with a category
    that has no schema) it is sent as it is. A manifest's rows are manifest items.

    Raises :class:`ImportErrors` listing every bad row, or :class:`InputError` for a file that
    cannot be read at all.
    """
    if doc_type not in ("roster", "manifest"):
        raise InputError(f"unknown document type {doc_type!r}", field="type")
    fmt = file_format(path)
    if fmt == "json":
        return _json_submission(path, doc_type, category, limits)
    if doc_type == "roster":
        if category is None:
            raise UsageError(f"{path}: a roster from a CSV or XLSX file needs its category "
                             f"(--category {'|'.join(CATEGORIES)})")
        schema = roster_schema(category)
        records = _table_records(path, fmt, schema, {"category": category}, limits)
        return Submission(items=records, meta={"category": category}, format=fmt,
                          schema=schema.name)
    schema = record_schema(MANIFEST_ITEM)
    records = _table_records(path, fmt, schema, {}, limits)
    return Submission(items=records, meta=None, format=fmt, schema=schema.name)


def import_acks(path: str, *, limits: ImportLimits = LIMITS) -> list[dict[str, str]]:
    """Acknowledgements from a spreadsheet (CSV or XLSX) with the columns
    ``id,status,reason[,evidence]``: one row per item. Statuses may be in any case."""
    fmt = file_format(path)
    if fmt not in TABLE_FORMATS:
        raise InputError(f"{path}: acknowledgements are read from a .csv or .xlsx file",
                         field="file")
    rows = _rows(path, fmt, limits)
    hrow, header = _read_header(rows, path, limits)
    problems: list[RowError] = []
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = header_name(cell)
        if not name:
            continue
        if name not in ACK_COLUMNS:
            close = difflib.get_close_matches(name, ACK_COLUMNS, n=1, cutoff=0.7)
            hint = f"did you mean {close[0]!r}?" if close else "the columns are " + \
                ", ".join(ACK_COLUMNS)
            problems.append(RowError(row=hrow, column=_column_letter(i), field=name,
                                     message=f"unknown column {name!r}; {hint}"))
        elif name in index:
            problems.append(RowError(row=hrow, column=_column_letter(i), field=name,
                                     message=f"the column {name!r} is named twice"))
        else:
            index[name] = i
    for required in ("id", "status"):
        if required not in index:
            problems.append(RowError(row=hrow, field=required,
                                     message=f"no {required} column: it is required"))
    items: list[dict[str, str]] = []
    first_row: dict[str, int] = {}
    bad_rows: set[int] = set()
    # Without an id or a status column no row can be read: the header problem says it all.
    readable = "id" in index and "status" in index
    for n, cells in rows:
        if not readable:
            break
        if all(_blank(c) for c in cells):
            continue
        if len(items) >= limits.max_items:
            raise ImportLimitError(path, "too many records", limit="max_items",
                                   value=limits.max_items, where=f"row {n}")
        entry: dict[str, str] = {}
        for name, i in index.items():
            cell = cells[i] if i < len(cells) else None
            if not _blank(cell):
                entry[name] = (cell.strip() if isinstance(cell, str)
                               else _as_text(cell, None))
        row_problems = _ack_row_problems(entry, n, index, first_row)
        if row_problems:
            bad_rows.add(n)
            if len(problems) < MAX_LISTED:
                problems.extend(row_problems)
            continue
        if "status" in entry:
            entry["status"] = entry["status"].upper()
        first_row.setdefault(entry["id"], n)
        items.append(entry)
    if not items and not problems:
        problems.append(RowError(row=hrow + 1, message="no acknowledgements: the file has "
                                 "a header but no rows"))
    if problems:
        raise ImportErrors(path, problems[:MAX_LISTED], bad_rows=len(bad_rows),
                           header=any(p.row == hrow for p in problems))
    return items


def _ack_row_problems(entry: Mapping[str, str], n: int, index: Mapping[str, int],
                      first_row: Mapping[str, int]) -> list[RowError]:
    def at(name: str, message: str) -> RowError:
        i = index.get(name)
        return RowError(row=n, column=None if i is None else _column_letter(i), field=name,
                        message=message)

    problems = [at(name, "required field is missing") for name in ("id", "status")
                if name in index and name not in entry]
    if problems:
        return problems
    status = entry["status"].upper()
    if status not in ACK_STATUSES:
        return [at("status", f"unknown status {entry['status']!r}; one of: "
                             f"{', '.join(ACK_STATUSES)}")]
    try:
        AckItem(id=entry["id"], status=status, reason=entry.get("reason"),
                evidence=entry.get("evidence"))
    except InputError as exc:
        return [at(exc.field or "id", exc.detail)]
    if entry["id"] in first_row:
        return [at("id", f"item {entry['id']!r} is given twice (first on row "
                         f"{first_row[entry['id']]})")]
    return []


__all__ = ["ACK_COLUMNS", "FORMATS", "LIMITS", "MAX_LISTED", "ImportErrors", "ImportLimitError",
           "ImportLimits", "RowError", "Submission",
           "file_format", "header_name", "import_acks", "import_document",
           "load_json_submission", "load_json_value"]
