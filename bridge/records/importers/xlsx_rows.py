"""Rows of an XLSX workbook's first sheet. The zip is checked part by part before openpyxl
parses any of it: a workbook is a zip of XML parts, and each could be a bomb (a part that
inflates to gigabytes, an entity expansion, 70 million declared rows)."""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from bridge.core.errors import InputError
from bridge.core.printable import quoted
from bridge.records.importers.limits import (
    MIB,
    ImportLimitError,
    ImportLimits,
    check_file_size,
    count_cells,
)

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
    check_file_size(path, limits)
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
    part = f"part {quoted(info.filename)}"  # a name the file chose: bounded, escaped
    if info.file_size > cap:
        raise ImportLimitError(path, f"{part} inflates to {info.file_size:,} bytes",
                               limit=name, value=cap)
    ratio = info.file_size // max(info.compress_size, 1)
    if info.file_size > MIB and ratio >= limits.max_inflate_ratio:
        raise ImportLimitError(path, f"{part} inflates {ratio:,} times (a zip bomb)",
                               limit="max_inflate_ratio", value=limits.max_inflate_ratio)
    inflated = rows = strings = 0
    carry = b""
    with zf.open(info) as member:
        while chunk := member.read(MIB):
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


# The sheet that holds a document's meta (batch, declared counts, ...), never its items.
META_SHEET = "meta"


def _open_book(path: str, limits: ImportLimits) -> Any:
    _check_workbook(path, limits)
    # Imported here: only XLSX imports pay for loading it.
    import openpyxl  # type: ignore[import-untyped]

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many kinds on a damaged file
        raise _not_readable(path, str(exc)) from exc


def _is_meta(sheet: Any) -> bool:
    return str(sheet.title).strip().lower() == META_SHEET


def xlsx_rows(path: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    """Rows of the first worksheet that is not the ``meta`` sheet (read-only mode: rows stream
    from the file, never all in memory). Formulas give the value last saved with them."""
    book = _open_book(path, limits)
    try:
        sheets = [ws for ws in book.worksheets if not _is_meta(ws)]
        if not sheets:
            raise InputError(f"{path} has no worksheet of items", field="file")
        yield from _sheet_rows(sheets[0], path, limits)
    finally:
        book.close()


def _sheet_rows(sheet: Any, path: str, limits: ImportLimits
                ) -> Iterator[tuple[int, list[Any]]]:
    n = cells = 0
    try:
        for n, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = count_cells(n, row, cells, path, limits)
            yield n, list(row)
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a damaged sheet fails while it streams
        # The exception's own words are not said: a reader's conversion error quotes the
        # cell ("could not convert string to float: 'Marrow'").
        raise InputError(f"{path}: row {n + 1} cannot be read ({type(exc).__name__})",
                         field=f"row {n + 1}") from exc


def xlsx_meta(path: str, limits: ImportLimits) -> dict[str, Any] | None:
    """The document's meta from the workbook's ``meta`` sheet, if it has one: a KEY and a
    VALUE a row (a header row ``key,value`` is skipped). A value that is JSON text (``{...}``,
    ``[...]``) is read as JSON; a whole number stays a number."""
    book = _open_book(path, limits)
    try:
        sheets = [ws for ws in book.worksheets if _is_meta(ws)]
        if not sheets:
            return None
        meta: dict[str, Any] = {}
        for n, row in _sheet_rows(sheets[0], path, limits):
            key, value = [*row, None, None][:2]
            if key is None or (str(key).strip().lower() == "key" and n == 1):
                continue
            meta[str(key).strip()] = _meta_value(value, path, n)
        return meta
    finally:
        book.close()


def _meta_value(value: Any, path: str, row: int) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # a spreadsheet keeps every number as a float
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InputError(f"{path}: sheet meta, row {row}: not valid JSON ({exc})",
                             field=f"meta row {row}") from exc
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


__all__ = ["META_SHEET", "xlsx_meta", "xlsx_rows"]
