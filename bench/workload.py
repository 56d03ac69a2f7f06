"""Synthetic workload shared by the benchmarks: realistic-looking records, no real people."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

SURNAMES = ("Avenor", "Belcastro", "Corvin", "Dunmere", "Elstrand", "Falkrey", "Gorran",
            "Halvik", "Istrel", "Jorvant")
FIRST = ("Ari", "Bren", "Cael", "Dario", "Emin", "Fenn", "Goran", "Ilya", "Jonas", "Kem")
RANKS = ("private", "corporal", "sergeant", "lieutenant")


def manifest_items(n: int) -> list[dict[str, Any]]:
    """``n`` manifest items of about 200 bytes each (person kind, synthetic identities)."""
    return list(iter_items(n))


def item_number(i: int, n: int, *, shuffled: bool = False) -> int:
    """The number in the id of item ``i`` of ``n``: ``i``, or with ``shuffled`` a permutation
    of 0 … n - 1 that puts consecutive items far apart (a stride of about n / golden ratio,
    prime to n), so that ids, like real ones, come in no order the indexes on them could use.
    Computed per item: no list of a million numbers."""
    if not shuffled:
        return i
    stride = max(1, round(n * 0.6180339887))
    while math.gcd(stride, n) != 1:
        stride += 1
    return (i * stride) % n


def iter_items(n: int, *, shuffled: bool = False) -> Iterator[dict[str, Any]]:
    """The same items, one at a time (a million of them are never held at once); with
    ``shuffled``, their ids and roster records numbered by ``item_number``."""
    return (
        {
            "id": f"ITEM-{k:07d}",
            "kind": "person",
            "roster_record": f"POW-{k:07d}",
            "category": "pow",
            "surname": SURNAMES[i % 10],
            "first_names": f"{FIRST[i % 7]} {FIRST[(i // 7) % 10]}",
            "rank": RANKS[i % 4],
            "date_of_birth": f"{1970 + i % 35}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "service_number": f"SN-{i * 7919 % 10_000_000:07d}",
            "seal_numbers": [f"S{i:07d}"],
        }
        for i, k in ((i, item_number(i, n, shuffled=shuffled)) for i in range(n))
    )


def print_figures(out: Mapping[str, Any], *, as_json: bool, width: int = 26) -> None:
    """A benchmark's figures: as JSON, or one ``name: value`` a line, the names aligned."""
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        print(f"{k:>{width}}: {v}")
