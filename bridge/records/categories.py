"""Record schemas: the four roster categories and manifest items (DESIGN §6).

Each record kind has a JSON Schema (2020-12) in ``schemas/``: ``roster-pow``,
``roster-civilian_detainee``, ``roster-child_tracing``, ``roster-remains`` and ``manifest-item``.
Sensitive fields carry ``"x-sensitive": true`` and are listed in the schema's top-level
``"x-sensitive-fields"``; ``"x-hint"`` says in words what a value must look like, for messages.

JSON Schema does the bulk of the checking (jsonschema_rs, in Rust). What it cannot say, one cheap
Python pass over the records adds:

- dates that match ``YYYY-MM-DD`` but do not exist (``2023-02-30``);
- raw DNA profiles (STR loci with allele numbers) in any text: only sample barcodes, match-report
  ids and the match statistic may be sent;
- a field listed in ``withheld`` that is nevertheless present;
- duplicate record ids.

:func:`check_records` reports *every* problem (up to a limit) so that an import can list all bad
rows at once; :func:`validate_submission` is the daemon's check of a submitted document and
raises one :class:`InputError` naming ``items[i].field``.

Pure: no I/O beyond reading the schema files once.
"""

from __future__ import annotations

import bisect
import datetime
import difflib
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from bridge.core.errors import InputError
from bridge.records.schema import SCHEMA_DIR

CATEGORIES = ("pow", "civilian_detainee", "child_tracing", "remains")
MANIFEST_ITEM = "manifest-item"
MANIFEST_KINDS = ("person", "remains_package", "effects_packet", "document")
MAX_ERRORS = 1000

DNA_ADVICE = ("raw DNA profiles are never sent: send the sample_barcode, the match_report_id "
              "and the statistic of the match instead")

# STR loci of the common forensic kits (CODIS core, ESS, Penta, Y-STR) and amelogenin. A locus
# name followed by an allele number ("D8S1179 13", "TH01: 9.3", "AMEL X") is one typed locus;
# two different typed loci in one value are a profile (or part of one), never a name or a place.
_LOCUS = (r"D\d{1,2}S\d{2,4}|FGA|TH01|TPOX|VWA|CSF1PO|PENTA[ _]?[DE]|SE33"
          r"|DYS\d{2,3}(?:I{1,2}|[A-C])?|AMEL(?:OGENIN)?")
_TYPED_LOCUS = re.compile(rf"(?i)\b({_LOCUS})\b\s*[:=(]?\s*(?:\d{{1,2}}(?:\.\d)?|XY?|Y)\b")
_MIN_LOCI = 2
# Field names that announce a raw profile. The schemas carry the same expression in
# ``propertyNames`` (lower case: field names are lower case); this copy also catches
# "DNA_Profile", which the schemas refuse as a name before they look at its meaning.
DNA_FIELD_NAME = re.compile(r"(dna|str)_?profile|genotype|allele|haplotype|electropherogram|^loci$"
                       r"|^locus|^str_|_str$|^y_?str|mt_?dna_?seq")


# ---------------------------------------------------------------- schema descriptions


@dataclass(frozen=True, kw_only=True)
class FieldInfo:
    """What an importer and a message need to know of one field (``a`` or ``a.b``)."""

    path: str
    kind: str  # string | integer | boolean | list | object | any
    item_kind: str | None = None  # for lists: the kind of each entry
    date: bool = False
    sensitive: bool = False
    required: bool = False
    hint: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RecordSchema:
    name: str
    category: str | None  # roster schemas only
    schema: Mapping[str, Any]
    fields: Mapping[str, FieldInfo]  # top-level and nested (``identification.status``)
    required: tuple[str, ...]
    alternatives: tuple[str, ...]  # anyOf of single "required": at least one of these
    open: bool  # further (unlisted) fields are allowed
    sensitive: frozenset[str]
    validator: Any

    @property
    def free_nested(self) -> tuple[str, ...]:
        """Top-level lists and objects that may hold free text (not lists of fixed words)."""
        return tuple(f.path for f in self.fields.values() if "." not in f.path
                     and (f.kind == "object" or (f.kind == "list" and not f.options)))

    @property
    def date_fields(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields.values() if f.date and "." not in f.path)

    def field(self, path: str) -> FieldInfo | None:
        """The field a path inside a record is about (list positions dropped)."""
        return self.fields.get(re.sub(r"\[\d+\]", "", path))


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a property with the ``$defs`` entry it refers to (the property's keys win)."""
    out: dict[str, Any] = {}
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out.update(_resolve(defs[ref.removeprefix("#/$defs/")], defs))
        out["x-def"] = ref.removeprefix("#/$defs/")
    out.update({k: v for k, v in prop.items() if k != "$ref"})
    return out


def _kind(spec: Mapping[str, Any]) -> str:
    t = spec.get("type")
    if isinstance(t, str):
        return {"array": "list", "string": "string", "integer": "integer",
                "boolean": "boolean", "object": "object"}.get(t, "any")
    if "enum" in spec or "const" in spec:
        return "string"
    return "any"


def _fields(props: Mapping[str, Any], required: Sequence[str], defs: Mapping[str, Any],
            prefix: str = "") -> Iterator[FieldInfo]:
    for name, raw in props.items():
        spec = _resolve(raw, defs)
        path = prefix + name
        item_kind = None
        options: tuple[str, ...] = tuple(spec.get("enum", ()))
        if _kind(spec) == "list":
            items = _resolve(spec.get("items", {}), defs)
            item_kind = _kind(items)
            options = tuple(items.get("enum", ()))
        yield FieldInfo(path=path, kind=_kind(spec), item_kind=item_kind,
                        date=spec.get("x-def") == "date", sensitive=bool(spec.get("x-sensitive")),
                        required=name in required, hint=spec.get("x-hint"), options=options)
        if _kind(spec) == "object" and "properties" in spec:
            yield from _fields(spec["properties"], spec.get("required", ()), defs, path + ".")


@functools.cache
def record_schema(name: str) -> RecordSchema:
    """``roster-pow`` … ``roster-remains`` or ``manifest-item``, loaded once."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    defs = schema.get("$defs", {})
    fields = {f.path: f for f in _fields(schema["properties"], schema["required"], defs)}
    alternatives = tuple(alt["required"][0] for alt in schema.get("anyOf", ())
                         if list(alt) == ["required"] and len(alt["required"]) == 1)
    return RecordSchema(
        name=name, category=schema.get("x-category"), schema=schema, fields=fields,
        required=tuple(schema["required"]), alternatives=alternatives,
        open=schema.get("additionalProperties", True) is not False,
        sensitive=frozenset(schema.get("x-sensitive-fields", ())),
        validator=jsonschema_rs.validator_for(schema))


def roster_schema(category: str) -> RecordSchema:
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}; one of: {', '.join(CATEGORIES)}",
                         field="category", code="unknown_category")
    return record_schema(f"roster-{category}")


# ---------------------------------------------------------------- problems


@dataclass(frozen=True, kw_only=True)
class RecordError:
    """One problem of one record. ``field`` is a path inside the record (``surname``,
    ``identification.method[1]``); empty when it is about the record as a whole."""

    index: int
    field: str
    message: str
    code: str  # missing | unknown_field | bad_value | bad_date | raw_dna | withheld_present
    #            | duplicate_id | not_a_record
    first: int | None = None  # duplicate_id: the index where the id first appeared


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    errors: tuple[RecordError, ...]  # in record order; at most the limit asked for
    bad: frozenset[int]  # indices of every record with at least one problem

    @property
    def ok(self) -> bool:
        return not self.bad


def _path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _got(value: object, info: FieldInfo | None) -> str:
    """`` (got 'x')`` for a message, unless the field is sensitive: messages end up on screens
    and in logs, and a sensitive value stays out of them."""
    if info is not None and info.sensitive:
        return ""
    text = repr(value)
    return f" (got {text if len(text) <= 40 else text[:37] + '...'})"


def _suggest(name: str, schema: RecordSchema) -> str:
    close = difflib.get_close_matches(name.lower(), list(schema.fields), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_WORDS = {"integer": "a whole number", "string": "text", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "empty"}


def _translate(schema: RecordSchema, index: int, err: Any, record: Mapping[str, Any],
               values: bool) -> list[RecordError]:
    """A jsonschema_rs error, in words a person filling in a spreadsheet can act on."""
    at = list(err.instance_path)
    field = _path(at)
    info = schema.field(field)
    kind = err.kind
    K = jsonschema_rs.ValidationErrorKind

    def one(message: str, code: str = "bad_value", where: str = field) -> list[RecordError]:
        return [RecordError(index=index, field=where, message=message, code=code)]

    if isinstance(kind, K.Required):
        return one("required field is missing", "missing", _join(field, str(kind.property)))
    if isinstance(kind, K.AnyOf) and not at and schema.alternatives:
        names = schema.alternatives
        return one(f"give at least one of {' or '.join(names)}", "missing", names[0])
    if isinstance(kind, K.AdditionalProperties):
        return [RecordError(index=index, field=_join(field, str(name)), code="unknown_field",
                            message=f"unknown field{_suggest(str(name), schema)}")
                for name in kind.unexpected]
    if isinstance(kind, K.PropertyNames):
        inner = kind.error
        name = str(inner.instance)
        if isinstance(inner.kind, K.Not) or DNA_FIELD_NAME.search(name.lower()):
            return one(DNA_ADVICE, "raw_dna", _join(field, name))
        return one("field names are lower-case letters, digits and _ (at most 64)"
                   + _suggest(name, schema), "unknown_field", _join(field, name))
    value = err.instance
    got = _got(value, info) if values else ""
    if isinstance(kind, K.Type):
        wanted = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in kind.types)
        return one(f"must be {wanted}{got}")
    if field == "category" and isinstance(kind, (K.Constant, K.Enum)):
        return one(_category_message(schema, kind, value, record.get("kind"), values))
    if isinstance(kind, K.Constant):
        return one(f"must be {kind.expected_value!r} here{got}")
    if isinstance(kind, K.Enum) and re.fullmatch(r"withheld\[\d+\]", field):
        if value in schema.required:
            return one(f"{value} is required, so it cannot be withheld")
        return one(f"only optional fields of a {schema.category} record can be withheld, "
                   f"not {value!r}; one of: {', '.join(str(o) for o in kind.options)}")
    if isinstance(kind, K.Enum):
        return one(f"must be one of: {', '.join(str(o) for o in kind.options)}{got}")
    if isinstance(kind, K.Pattern):
        hint = info.hint if info is not None and info.hint else "a value of the expected form"
        return one(f"must be {hint}{got}")
    if isinstance(kind, (K.Minimum, K.ExclusiveMinimum)):
        return one(f"must be at least {kind.limit}{got}")
    if isinstance(kind, (K.Maximum, K.ExclusiveMaximum)):
        return one(f"must be at most {kind.limit}{got}")
    if isinstance(kind, K.MinLength):
        return one("must not be empty")
    if isinstance(kind, K.MaxLength):
        return one(f"is longer than {kind.limit} characters")
    if isinstance(kind, K.MinItems):
        return one(f"must list at least {kind.limit} value(s)")
    if isinstance(kind, K.MaxItems):
        return one(f"lists more than {kind.limit} values")
    if isinstance(kind, K.UniqueItems):
        return one("lists the same value twice")
    if isinstance(kind, K.MaxProperties):
        return one(f"has more than {kind.limit} fields")
    return one(str(err.message))


def _category_message(schema: RecordSchema, kind: Any, value: object, item_kind: object,
                      values: bool) -> str:
    allowed = [str(o) for o in ([kind.expected_value]
               if isinstance(kind, jsonschema_rs.ValidationErrorKind.Constant) else kind.options)]
    if value not in CATEGORIES:
        shown = f" {value!r}" if values else ""
        return (f"unknown category{shown}; " + (f"this roster's category is {schema.category}"
                if schema.category else f"one of: {', '.join(CATEGORIES)}"))
    if schema.category:
        return (f"a {schema.category} roster holds only {schema.category} records, not {value}: "
                f"send those in a {value} roster of their own")
    return (f"a {item_kind} is not of category {value}; one of: {', '.join(allowed)}"
            if isinstance(item_kind, str) else f"must be one of: {', '.join(allowed)}")


def _real_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def looks_like_str_profile(text: str) -> bool:
    """Two or more different STR loci, each with an allele number: a (partial) DNA profile."""
    loci = {m.upper() for m in _TYPED_LOCUS.findall(text)}
    return len(loci) >= _MIN_LOCI


def _dna_fields(value: Any, path: str = "") -> Iterator[str]:
    """Paths of the strings in a record (or inside a value) that hold an STR profile."""
    if isinstance(value, str):
        if looks_like_str_profile(value):
            yield path
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _dna_fields(inner, _join(path, str(key)))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from _dna_fields(inner, f"{path}[{n}]")


_PRIORITY = {"raw_dna": 0, "duplicate_id": 1}
_LOCUS_TOKENS = ("FGA", "TH01", "TPOX", "VWA", "CSF1PO", "PENTA", "SE33", "DYS", "AMEL")
_D_LOCUS = re.compile(r"D\d{1,2}S\d")


def _text(value: Any) -> str:
    """The strings inside a list or object value, joined (numbers and booleans hold none)."""
    return "\x1f".join(_strings(value)) if isinstance(value, (dict, list)) else ""


def _dna_suspects(records: Sequence[dict[str, Any]], *, open_schema: bool,
                  nested: Sequence[str]) -> list[int]:
    """Positions of the records whose text names an STR locus at all.

    Searching each record with the full expression costs about 5 µs a record (half a second for
    100,000). Instead: the strings of all records in one upper-cased text, searched for literal
    locus names (``str.find`` runs at memory speed) and ``D<n>S<n>`` (a literal-prefixed
    expression); a hit is mapped back to its record, and only those get the full look.
    """
    if open_schema:
        # Further fields may hold lists or objects anywhere: look inside every value.
        texts = ["\x1f".join([v if v.__class__ is str else _text(v) for v in r.values()])
                 for r in records]
    else:
        texts = ["\x1f".join([v for v in r.values() if v.__class__ is str]) for r in records]
        for name in nested:
            for k, r in enumerate(records):
                value = r.get(name)
                if value is not None and value.__class__ is not str:
                    texts[k] += "\x1f" + _text(value)
    blob = "\x1e".join(texts).upper()
    hits = [m.start() for m in _D_LOCUS.finditer(blob)]
    for token in _LOCUS_TOKENS:
        at = blob.find(token)
        while at != -1:
            hits.append(at)
            at = blob.find(token, at + 1)
    if not hits:
        return []
    ends = list(itertools.accumulate(len(t) + 1 for t in texts))
    return sorted({bisect.bisect_right(ends, at) for at in hits})


def check_records(schema: RecordSchema, records: Sequence[Any], *,
                  limit: int = MAX_ERRORS,
                  select: Callable[[Any], bool] | None = None,
                  values: bool = False) -> CheckResult:
    """Every problem of every record: all of them counted, the first ``limit`` described.

    Messages quote a bad value only with ``values`` (and never a sensitive field's): the local
    API promises errors without personal data from the request, while a person fixing their
    own spreadsheet is helped by seeing what a cell holds.

    ``select`` skips the records it returns False for (a manifest checks only the items that
    declare a ``kind``). Each check is one pass over all records, cheap on the good path: one
    call into Rust for the whole list, one comprehension per date field, one text search for
    DNA. Only the bad records are then looked at one by one, and only the first ``limit`` of
    them are described (describing costs, and nobody reads ten thousand messages).
    """
    if select is None:
        positions: Sequence[int] = range(len(records))
        chosen: Sequence[Any] = records
    else:
        positions = [i for i, r in enumerate(records) if select(r)]
        chosen = [records[i] for i in positions]
    found: dict[int, list[RecordError]] = {}  # position in ``chosen`` -> problems

    def add(j: int, error: RecordError) -> None:
        found.setdefault(j, []).append(error)

    dicts: Sequence[dict[str, Any]] = chosen
    where: Sequence[int] = range(len(chosen))
    if any(r.__class__ is not dict for r in chosen):
        for j, r in enumerate(chosen):
            if r.__class__ is not dict:
                add(j, RecordError(index=positions[j], field="", code="not_a_record",
                                   message="must be an object of fields"))
        where = [j for j, r in enumerate(chosen) if r.__class__ is dict]
        dicts = [chosen[j] for j in where]

    # 1. The schema: the whole list in one call; record by record only if it fails.
    is_valid = schema.validator.is_valid
    schema_bad: set[int] = set()
    if not _list_validator(schema.name).is_valid(dicts):
        schema_bad = {where[k] for k, r in enumerate(dicts) if not is_valid(r)}
    # 2. Duplicate ids.
    ids = [r.get("id") for r in dicts]
    if len(set(ids)) != len(ids):
        first_at: dict[Any, int] = {}
        for k, rid in enumerate(ids):
            if rid.__class__ is not str:
                continue
            first = first_at.setdefault(rid, k)
            if first != k:
                add(where[k], RecordError(index=positions[where[k]], field="id",
                                          code="duplicate_id", first=positions[where[first]],
                                          message=f"duplicate id {rid!r}"))
    # 3. Dates that match the pattern but do not exist: only a day after the 28th can be one.
    for name in schema.date_fields:
        quote = values and not schema.fields[name].sensitive
        for k, r in enumerate(dicts):
            value = r.get(name)
            if (value.__class__ is str and len(value) == 10 and value[8:] > "28"
                    and not _real_date(value)):
                add(where[k], RecordError(
                    index=positions[where[k]], field=name, code="bad_date",
                    message=f"{value} is not a date that exists" if quote else
                    "not a date that exists (the day is past the end of its month)"))
    # 4. Withheld fields that are present after all.
    for k, r in enumerate(dicts):
        withheld = r.get("withheld")
        if withheld.__class__ is list:
            for name in withheld:
                info = schema.fields.get(name) if isinstance(name, str) else None
                # A required field cannot be withheld: the schema says so on the list itself.
                if info is not None and not info.required and name in r:
                    add(where[k], RecordError(
                        index=positions[where[k]], field=name, code="withheld_present",
                        message="is listed in withheld, so it must be absent (leave it empty, "
                                "or take it off the withheld list)"))
    # 5. Raw DNA profiles in any text.
    for k in _dna_suspects(dicts, open_schema=schema.open, nested=schema.free_nested):
        for name in _dna_fields(dicts[k]):
            add(where[k], RecordError(index=positions[where[k]], field=name, code="raw_dna",
                                      message=DNA_ADVICE))

    bad = sorted(schema_bad | set(found))
    errors: list[RecordError] = []
    for j in bad:
        if len(errors) >= limit:
            break
        problems = []
        if j in schema_bad:
            for err in schema.validator.iter_errors(chosen[j]):
                problems.extend(_translate(schema, positions[j], err, chosen[j], values))
        problems.extend(found.get(j, ()))
        errors.extend(_dedupe(problems))
    return CheckResult(errors=tuple(errors[:limit]), bad=frozenset(positions[j] for j in bad))


@functools.cache
def _list_validator(name: str) -> Any:
    """The record schema applied to every element of a list: one call for a whole document."""
    return jsonschema_rs.validator_for({"type": "array", "items": record_schema(name).schema})


def _dedupe(found: list[RecordError]) -> list[RecordError]:
    """One problem per field: the most telling (a raw DNA profile before "unknown field")."""
    best: dict[str, RecordError] = {}
    for e in found:
        kept = best.get(e.field)
        if kept is None or _PRIORITY.get(e.code, 9) < _PRIORITY.get(kept.code, 9):
            best[e.field] = e
    return list(best.values())


# ---------------------------------------------------------------- the daemon's check


def _has_kind(item: Any) -> bool:
    return isinstance(item, dict) and "kind" in item


def check_submission(doc_type: str, meta: Mapping[str, Any] | None,
                     items: Sequence[Any], *, limit: int = MAX_ERRORS,
                     values: bool = False) -> CheckResult | None:
    """Check a document's items against their record schema, if they have one: a roster whose
    ``meta.category`` is one of :data:`CATEGORIES`; the manifest items that declare a
    ``kind``. Other submissions (a roster of another category, generic items) are not checked
    here and are accepted as before (``None``)."""
    if doc_type == "roster":
        category = meta.get("category") if isinstance(meta, Mapping) else None
        if category not in CATEGORIES:
            return None
        return check_records(roster_schema(str(category)), items, limit=limit, values=values)
    if doc_type == "manifest":
        if not any(_has_kind(item) for item in items):
            return None
        return check_records(record_schema(MANIFEST_ITEM), items, limit=limit, select=_has_kind,
                             values=values)
    return None


def validate_submission(doc_type: str, meta: Mapping[str, Any] | None,
                        items: Sequence[Any]) -> None:
    """Raise :class:`InputError` naming ``items[i].field`` of the first problem (and saying how
    many other items have one), if any."""
    result = check_submission(doc_type, meta, items, limit=1)
    if result is None or result.ok:
        return
    first = result.errors[0]
    field = f"items[{first.index}]" + (f".{first.field}" if first.field else "")
    others = len(result.bad) - 1
    more = f" ({others} other item(s) have problems too)" if others else ""
    raise InputError(first.message + more, field=field, code="invalid_record")


__all__ = ["CATEGORIES", "DNA_ADVICE", "DNA_FIELD_NAME", "MANIFEST_ITEM", "MANIFEST_KINDS",
           "MAX_ERRORS", "CheckResult", "FieldInfo", "RecordError", "RecordSchema", "check_records",
           "check_submission", "looks_like_str_profile", "record_schema", "roster_schema",
           "validate_submission"]
