"""Reconciliation benchmark: the report over a store of 100,000 items.

    .venv/bin/python bench/reconcile.py              # 100,000 items, median of 5 runs
    .venv/bin/python bench/reconcile.py --json       # the same figures as JSON
    .venv/bin/python bench/reconcile.py --items 20000 --repeat 3

Builds one SQLite store directly through ``bridge.store.sqlite.store`` (no daemon, no network):
rosters and
manifests in both directions, every record carrying its category the way the record schemas
require (so the entries are decoded for it), manifest items that name their roster record,
statuses of every kind with their acknowledgement history, undeclared items and reasons. Then
times ``Exchange.reconcile`` (the grouped SQL queries and the report) + JSON text + the HTML
page, as ``bridge reconcile`` gets them from the daemon. All records are synthetic.

This is a measurement, never a test: nothing here fails a build. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import ACK_STATUSES, Item, encode_declared_entry
from bridge.engine.exchange import Exchange
from bridge.home.config import Config
from bridge.reports.render.html import render_html
from bridge.reports.render.json import from_json
from bridge.store.sqlite.store import Store

TARGET_S = 1.0
CREATED = 1_767_225_600_000
SURNAMES = ("Aldren", "Borovik", "Castellan", "Dravec", "Esterhaz", "Fenwick", "Gorodin",
            "Halloran", "Ivanek", "Jarosz", "Kestrel", "Lindqvist", "Moravec", "Nolander")
FIRST = ("Adrian", "Bohdan", "Cyril", "Danylo", "Emil", "Filip", "Gleb", "Hryhorii", "Ivo")
# Statuses in realistic proportions: mostly RECEIVED, every other status present.
MIX = (["RECEIVED"] * 30 + [None] * 6 + ["IDENTITY_CONFIRMED"] * 6
       + ["PENDING_IDENTIFICATION"] * 3 + ["NOT_RECEIVED"] * 2 + ["DISPUTED"] * 2
       + [s for s in ACK_STATUSES if s not in ("RECEIVED", "IDENTITY_CONFIRMED",
                                               "PENDING_IDENTIFICATION", "NOT_RECEIVED",
                                               "DISPUTED", "RECEIVED_UNDECLARED")])
REASONS = ("date of birth differs from the roster", "tag number differs", "not on the bus",
           "held for proceedings", "medical hold", "already released")


def pow_record(i: int) -> dict[str, Any]:
    return {"category": "pow", "surname": SURNAMES[i % 14], "first_names": FIRST[i % 9],
            "rank": "private",
            "date_of_birth": f"{1975 + i % 30}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "service_number": f"SN-{i:07d}", "place_of_birth": "Sample town (synthetic)"}


def civilian_record(i: int) -> dict[str, Any]:
    return {"category": "civilian_detainee", "surname": SURNAMES[i % 14],
            "first_names": FIRST[i % 9], "nationality": "beta", "measure_nature": "internment",
            "measure_date": "2026-03-01", "place_held": "Camp 2 (synthetic)"}


def child_record(i: int) -> dict[str, Any]:
    return {"category": "child_tracing", "surname": SURNAMES[i % 14],
            "first_names": FIRST[i % 9], "sex": "f" if i % 2 else "m",
            "last_known_place": "Sample village (synthetic)"}


# (direction, type, id prefix, documents, items per document, meta, record(i), item fields)
Plan = tuple[str, str, str, int, int, dict[str, Any], Callable[[int], dict[str, Any]]]


def plan(n: int) -> list[Plan]:
    """Six kinds of document; their items add up to ``n``."""
    u = n // 10
    return [
        ("out", "roster", "R-POW", 1, 2 * u, {"category": "pow", "quota": 2 * u},
         pow_record),
        # persons handed over: items of their own id naming their roster record
        ("out", "manifest", "M-POW", 2, u, {"category": "pow", "declared": u},
         lambda i: {"kind": "person", "category": "pow", "roster_record": f"R-POW-{i:07d}"}),
        ("out", "manifest", "M-REM", 4, u // 2,
         {"category": "remains", "declared": {"remains_package": u // 2}},
         lambda i: {"kind": "remains_package", "category": "remains",
                    "body_tag": f"BT-{i:07d}", "seal_numbers": [f"SEAL-{i:07d}"]}),
        ("in", "roster", "B-CIV", 1, u, {"category": "civilian_detainee"}, civilian_record),
        # the peer's manifests give the category in meta only: no entry is decoded
        ("in", "manifest", "B-POW", 2, u, {"category": "pow", "declared": u},
         lambda i: {"kind": "person", "surname": SURNAMES[i % 14], "rank": "private"}),
        ("in", "roster", "B-CHILD", 1, n - 9 * u, {"category": "child_tracing"},
         child_record),
    ]


def build_store(path: Path, n: int) -> tuple[Store, int]:
    store = Store(path)
    ack_doc = 0
    entries = 0
    for direction, doc_type, prefix, docs, per_doc, meta, record in plan(n):
        for d in range(docs):
            doc_id = f"{prefix}-{d + 1}"
            first = d * per_doc
            with store.transaction():
                row = store.insert_document(
                    id=doc_id, direction=direction, peer="beta", type=doc_type,
                    digest=hashlib.sha256(doc_id.encode()).digest(), header=b"h", sig=b"s",
                    count=per_doc, answers=None, meta=meta, created=CREATED + d,
                    state="delivered", now=CREATED)

                def items(row: int = row, first: int = first, per_doc: int = per_doc,
                          prefix: str = prefix, record: Callable[[int], dict[str, Any]] = record,
                          transport: str = "delivered" if direction == "out" else "received",
                          ) -> Iterator[tuple[int, int, str, bytes, bytes, str]]:
                    for k in range(per_doc):
                        i = first + k
                        item_id = f"{prefix}-{i:07d}"
                        leaf = encode_declared_entry(k, hashlib.sha256(item_id.encode()).digest()
                                                     [:16], Item(id=item_id, data=record(i)))
                        yield (row, k, item_id, leaf, hashlib.sha256(leaf).digest(), transport)

                store.insert_items(items())
                ack_doc += 1
                ack = store.insert_document(
                    id=f"ACK-{ack_doc}", direction="in" if direction == "out" else "out",
                    peer="beta", type="ack", digest=hashlib.sha256(b"ack" + doc_id.encode()
                                                                   ).digest(),
                    header=b"h", sig=b"s", count=per_doc, answers=row, meta={},
                    created=CREATED + 1000, state="received", now=CREATED)
                statuses = [(k, MIX[(first + k) % len(MIX)]) for k in range(per_doc)]
                acked = [(k, s) for k, s in statuses if s is not None]
                at = CREATED + 1000
                store.insert_ack_entries(
                    (ack, n_, row, k, f"{prefix}-{first + k:07d}", s,
                     REASONS[k % len(REASONS)] if s not in ("RECEIVED", "IDENTITY_CONFIRMED")
                     else None, None, b"leaf", at) for n_, (k, s) in enumerate(acked))
                # A few items that arrived undeclared (manifests only).
                undeclared = 5 if doc_type == "manifest" else 0
                store.insert_ack_entries(
                    (ack, len(acked) + u_, row, None, f"{prefix}-X{u_}", "RECEIVED_UNDECLARED",
                     "not on the manifest", None, b"leaf", at) for u_ in range(undeclared))
                store.update_statuses(
                    (s, REASONS[k % len(REASONS)] if s not in ("RECEIVED", "IDENTITY_CONFIRMED")
                     else None, None, at, row, k) for k, s in acked)
                entries += len(acked) + undeclared
    return store, entries


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bridge-bench-reconcile-") as tmp:
        t0 = time.perf_counter()
        store, ack_entries = build_store(Path(tmp) / "bridge.db", args.items)
        build_s = time.perf_counter() - t0
        items = sum(d.count for d in store.list_documents(direction=None, type=None, peer=None,
                                                            limit=1 << 30))
        me = PrivateIdentity.generate("alpha", created=CREATED)
        peer = PrivateIdentity.generate("beta", created=CREATED).public
        exchange = Exchange(store=store, identity=me, peers={"beta": peer},
                            config=Config(party="alpha", listen="127.0.0.1:0"),
                            clock=lambda: CREATED + 10_000)

        runs: dict[str, list[float]] = {"query": [], "query_cpu": [], "json": [], "html": [],
                                        "total": []}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            cpu = time.process_time()
            q_s, data = timed(lambda: exchange.reconcile(quota=1000))
            runs["query_cpu"].append(time.process_time() - cpu)
            j_s, text = timed(lambda data=data: json.dumps(data))
            h_s, page = timed(lambda data=data: render_html(from_json(data)))
            for key, value in (("query", q_s), ("json", j_s), ("html", h_s),
                               ("total", q_s + j_s + h_s)):
                runs[key].append(value)
            sizes = {"json_bytes": len(text), "html_bytes": len(page)}
        store.close()

    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "items": items, "ack_entries": ack_entries, "repeat": args.repeat,
        "build_store_s": round(build_s, 2),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "min_total_s": round(min(runs["total"]), 4), "max_total_s": round(max(runs["total"]), 4),
        **sizes, "target_s": TARGET_S, "verdict": "PASS" if med["total"] < TARGET_S else "MISS",
        "python": platform.python_version(), "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"reconciliation of {items:,} items ({ack_entries:,} acknowledgement entries), "
          f"median of {args.repeat} (store built in {build_s:.1f} s)")
    print(f"  Exchange.reconcile (SQL + report) {med['query'] * 1000:8.1f} ms  "
          f"({med['query_cpu'] * 1000:.1f} ms CPU: a busy machine blurs it less)")
    print(f"  JSON text                        {med['json'] * 1000:8.1f} ms  "
          f"({sizes['json_bytes']:,} bytes)")
    print(f"  HTML page (from the JSON)        {med['html'] * 1000:8.1f} ms  "
          f"({sizes['html_bytes']:,} bytes)")
    print(f"  total                            {med['total'] * 1000:8.1f} ms  "
          f"(min {min(runs['total']) * 1000:.1f}, max {max(runs['total']) * 1000:.1f})")
    print(f"{result['verdict']}: total {med['total']:.3f} s, target < {TARGET_S:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
