"""The store check at start, against the history of the store: does a restart cost more as
the daemon ages?

    python bench/start_check.py [--history 500,2000,4000] [--json]

For each history H: H single-item round trips (a one-item manifest alpha → beta, acknowledged
by beta: ``round_trip_cost.one_round``, two engines in one process on real SQLite files), a
complete check of beta's store at a restart (it leaves its signed mark), one more round trip,
then beta restarted again and timed: the check at start (what changed since the mark) and
then the whole check that runs beside the work (``CheckPass``, to its end). Prints beta's
audit records, the seconds of each check, and the audit records the start read. Only the
engine's API is used, so a copy of it beside an older Bridge measures that one too. A
measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from round_trip_cost import identity, one_round, open_pair, wire

from bridge.core import audit
from bridge.engine.check_pass import CheckPass
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.check import CheckRows


def measure(history: int, root: Path) -> dict[str, Any]:
    with open_pair(root, identity("alpha", 1), identity("beta", 1)) as h:
        for n in range(history):
            one_round(h, n, None)
        wire.sql(h.beta.engine).execute("DELETE FROM store_check_mark")
        h.beta.restart()
        assert h.beta.engine.check_store() == []  # the whole check, at start: it leaves a mark
        one_round(h, history, None)
        read: list[int] = []
        whole = CheckRows.audit_records

        def counted(self: CheckRows, *args: int, **kw: int) -> list[audit.AuditRecord]:
            records = whole(self, *args, **kw)  # an older Bridge's takes no argument
            read.append(len(records))
            return records

        CheckRows.audit_records = counted  # type: ignore[method-assign]
        try:
            h.beta.restart()
            t0 = time.perf_counter()
            assert h.beta.engine.check_store() == []
            at_start = time.perf_counter() - t0
        finally:
            CheckRows.audit_records = whole  # type: ignore[method-assign]
        records = h.beta.engine.store.check_rows().audit_head()[0]
        conn = audit_db.connect(h.beta.home.db_path)
        try:
            t0 = time.perf_counter()
            work, done = CheckPass(CheckRows(conn)), False
            while not done:
                _, done = work.step(1000)
            beside = time.perf_counter() - t0
        finally:
            conn.close()
    return {"history": history, "audit_records": records, "start_check_s": round(at_start, 3),
            "records_read_at_start": sum(read), "whole_check_beside_s": round(beside, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", default="500,2000,4000",
                        help="comma-separated numbers of round trips before the restart")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for h in args.history.split(","):
        with tempfile.TemporaryDirectory(prefix="bridge-start-check-") as tmp:
            rows.append(measure(int(h), Path(tmp)))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'history':>8} {'records':>8} {'start check s':>14} {'read at start':>14} "
          f"{'whole check s':>14}")
    for r in rows:
        print(f"{r['history']:>8} {r['audit_records']:>8} {r['start_check_s']:>14} "
              f"{r['records_read_at_start']:>14} {r['whole_check_beside_s']:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
