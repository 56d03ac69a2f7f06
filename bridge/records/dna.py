"""Raw DNA profiles, which are never sent (DESIGN §6): only sample barcodes, match-report ids
and the statistic of a match may be. A profile is found by its STR loci with allele numbers,
in any text of a record, and a field is refused by a name that announces one.

Pure: regular expressions over values.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any

from bridge.records.record_schemas import join_field

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


def dna_fields(value: Any, path: str = "") -> Iterator[str]:
    """Paths of the strings in a record (or inside a value) that hold an STR profile."""
    if isinstance(value, str):
        if looks_like_str_profile(value):
            yield path
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from dna_fields(inner, join_field(path, str(key)))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from dna_fields(inner, f"{path}[{n}]")


_LOCUS_TOKENS = ("FGA", "TH01", "TPOX", "VWA", "CSF1PO", "PENTA", "SE33", "DYS", "AMEL")
_D_LOCUS = re.compile(r"D\d{1,2}S\d")


_NO_TEXT = frozenset({int, bool, float, type(None)})


def _text(value: Any) -> str:
    """The strings inside a list or object value, joined (numbers and booleans hold none)."""
    if value.__class__ is list and all(v.__class__ is str for v in value):
        return "\x1f".join(value)  # a list of text (seal numbers): no walk, the same text
    return "\x1f".join(_strings(value)) if isinstance(value, (dict, list)) else ""


def dna_suspects(records: Sequence[dict[str, Any]], *, open_schema: bool,
                 nested: Sequence[str]) -> list[int]:
    """Positions of the records whose text names an STR locus at all.

    Searching each record with the full expression costs about 5 µs a record (half a second for
    100,000). Instead: the strings of all records in one upper-cased text, searched for literal
    locus names (``str.find`` runs at memory speed) and ``D<n>S<n>`` (a literal-prefixed
    expression); a hit is mapped back to its record, and only those get the full look.
    """
    if open_schema:
        # Further fields may hold lists or objects anywhere: look inside every value.
        texts = ["\x1f".join([v if v.__class__ is str else
                              "" if v.__class__ in _NO_TEXT else _text(v) for v in r.values()])
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


__all__ = ["DNA_ADVICE", "DNA_FIELD_NAME", "dna_fields", "dna_suspects", "looks_like_str_profile"]
