"""What the items table's indexes cost the write path: bare SQL on a real store file (every
migration run, WAL, synchronous=FULL), no Bridge engine above it.

    .venv/bin/python bench/index_writes.py [--items 100000] [--repeat 3] [--shuffled] [--json]

For a document of ``--items`` entries (a multiple of 1,000; an outbound manifest, each entry
with a category and half of them naming a roster record, as the reconciliation groups them),
it times in CPU seconds of this process, best of ``--repeat`` on a fresh store each time:

- ``insert``: the entries inserted 1,000 a statement, one transaction per 10,000, by the
  store's own ``Items.insert_received_items`` (as intake stores them);
- ``transport``: their transport moved queued -> sent -> delivered, one range statement per
  1,000 (as the outbox does when an envelope is sent, then receipted);
- ``status``: their acknowledgement status set, one range statement per 1,000 (as an
  acknowledgement of all items is applied), then a second status for a tenth of them, 100
  statements of single rows each;
- ``every``: one more status for every item in one statement (``Items.set_all_statuses``, the
  statement the receiver's acknowledgement of all items runs).

With ``--shuffled`` the item ids (and roster records) come in no order, as real ones do
(``workload.item_number``): every index on them is written at a random place per item.

A/B: run it from an older tree with that tree on ``PYTHONPATH``. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import item_number

from bridge.store.sqlite import database
from bridge.store.sqlite.items import Items, ReceivedColumns
from bridge.store.sqlite.migrate import migrate

PER_STATEMENT = 1000
PER_TRANSACTION = 10_000


def _store(folder: str, n: int) -> tuple[database.sqlite3.Connection, int]:
    conn = database.open_database(Path(folder) / "store.sqlite")
    migrate(conn)
    cur = conn.execute(
        "INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, meta, "
        "created, state, updated) VALUES ('M-1', 'out', 'beta', 'manifest', x'01', x'', x'', "
        "?, '{\"category\": \"pow\"}', 0, 'sent', 0)", (n,))
    assert cur.lastrowid is not None
    return conn, cur.lastrowid


def _rows(doc: int, n: int, shuffled: bool) -> list[tuple[int, ReceivedColumns]]:
    """Each statement's first index and columns, built before the clock starts."""
    out = []
    for first in range(0, n, PER_STATEMENT):
        places = range(first, min(first + PER_STATEMENT, n))
        ks = [item_number(i, n, shuffled=shuffled) for i in places]
        out.append((first, ([f"P-{k:08d}" for k in ks], [os.urandom(180) for _ in ks],
                            [os.urandom(32) for _ in ks],
                            ["pow" if i % 3 else "civilian" for i in places],
                            [f"R-{k // 2:08d}" if i % 2 else None
                             for i, k in zip(places, ks, strict=True)])))
    return out


def _insert(conn: database.sqlite3.Connection, doc: int,
            statements: list[tuple[int, ReceivedColumns]]) -> None:
    """Through the store's own write (``Items.insert_received_items``: the items rows and
    their entry bytes, as this tree keeps them)."""
    items, per = Items(conn), PER_TRANSACTION // PER_STATEMENT
    for start in range(0, len(statements), per):
        with database.transaction(conn):
            for first, columns in statements[start:start + per]:
                items.insert_received_items(doc, first, columns)


def _transport(conn: database.sqlite3.Connection, doc: int, n: int) -> None:
    for state in ("sent", "delivered"):
        for start in range(0, n, PER_TRANSACTION):
            with database.transaction(conn):
                for first in range(start, min(start + PER_TRANSACTION, n), PER_STATEMENT):
                    conn.execute("UPDATE items SET transport=? WHERE doc=? AND idx >= ? AND "
                                 "idx < ?", (state, doc, first, first + PER_STATEMENT))


def _status(conn: database.sqlite3.Connection, doc: int, n: int) -> None:
    for start in range(0, n, PER_TRANSACTION):
        with database.transaction(conn):
            for first in range(start, min(start + PER_TRANSACTION, n), PER_STATEMENT):
                conn.execute("UPDATE items SET status='RECEIVED', reason=NULL, evidence=NULL, "
                             "status_at=1 WHERE doc=? AND idx >= ? AND idx < ?",
                             (doc, first, first + PER_STATEMENT))
    with database.transaction(conn):
        conn.executemany("UPDATE items SET status='IDENTITY_CONFIRMED', reason=NULL, "
                         "evidence=NULL, status_at=2 WHERE doc=? AND idx=?",
                         [(doc, i) for i in range(0, n, 10)])


def _every(conn: database.sqlite3.Connection, doc: int) -> None:
    with database.transaction(conn):
        Items(conn).set_all_statuses(doc, "IDENTITY_CONFIRMED", None, None, 3)


def _cpu(fn: Callable[[], None]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def run(n: int, shuffled: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        conn, doc = _store(folder, n)
        statements = _rows(doc, n, shuffled)
        out = {"insert": _cpu(lambda: _insert(conn, doc, statements)),
               "transport": _cpu(lambda: _transport(conn, doc, n)),
               "status": _cpu(lambda: _status(conn, doc, n)),
               "every": _cpu(lambda: _every(conn, doc))}
        conn.close()
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shuffled", action="store_true", help="item ids in no order")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [run(args.items, args.shuffled) for _ in range(args.repeat)]
    best = {k: round(min(r[k] for r in runs), 3) for k in runs[0]}
    if args.json:
        print(json.dumps({"items": args.items, "shuffled": args.shuffled, **best}))
    else:
        for k, v in best.items():
            print(f"{k:10} {v:7.3f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
