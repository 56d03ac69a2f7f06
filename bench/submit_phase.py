"""The sender's work on a streamed submission, piece by piece, in one process (CPU seconds).

    .venv/bin/python bench/submit_phase.py                 # 100,000 manifest items
    .venv/bin/python bench/submit_phase.py --items 10000 --json

What the daemon does between the first byte of a msgpack ``POST /v1/documents`` and its 202,
less the HTTP and the commit: the msgpack parse (``MsgpackValues``), the document schema, the
record checks (``validate_submission``), the signed entries and leaf hashes
(``DocumentStream.add_record_columns``) and staging in a real SQLite store, a batch of
``STREAM_BATCH`` at a time, as ``bridge.engine.streaming`` does. Each line is the CPU time of one
piece over all items: compare a change against the code before it, back to back (``bench/e2e.py``
prints the whole phase's CPU as ``phase_cpu_seconds``). Synthetic records (``workload``). A
measurement, never a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import iter_items, print_figures

from bridge.core.streaming import DocumentStream
from bridge.local.msgpack_values import MsgpackValues
from bridge.local.stream import MAX_STREAM_LINE, STREAM_BATCH
from bridge.records.categories import validate_submission
from bridge.records.schema import validate
from bridge.store.entry_fields import records_fields
from bridge.store.sqlite.store import Store


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return round(time.process_time() - t0, 3), out


def _parse(blob: bytes) -> list[Any]:
    values = MsgpackValues(MAX_STREAM_LINE, lambda n: f"items[{n - 1}]")
    out: list[Any] = []
    for at in range(0, len(blob), 1 << 16):
        out.extend(values.feed(blob[at:at + (1 << 16)]))
    values.finish()
    return out[1:]  # the header first


def _entries(n: int, batches: list[list[dict[str, Any]]]) -> list[Any]:
    doc = DocumentStream(doc_type="manifest", doc_id="M-BENCH", recipient="beta", created=1,
                         meta={}, count=n, salt_key=bytes(32), chunk=4096)
    made = []
    for batch in batches:
        records = [(raw.pop("id"), raw) for raw in batch]
        made.append((records, *doc.add_record_columns(records)))
    return made


def _stage(store: Store, made: list[Any]) -> None:
    stage, first = store.open_stage(), 0
    for records, leaves, hashes in made:
        categories, roster_records = records_fields([r for _, r in records])
        store.stage_items(stage, first, ([i for i, _ in records], leaves, hashes,
                                         categories, roster_records))
        first += len(records)
    store.drop_stage(stage)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.items
    blob = b"".join(msgpack.packb(v) for v in [{"type": "manifest", "to": "beta", "count": n},
                                               *iter_items(n)])
    out: dict[str, Any] = {"items": n}
    out["parse_cpu_seconds"], items = _cpu(lambda: _parse(blob))
    batches = [items[k:k + STREAM_BATCH] for k in range(0, n, STREAM_BATCH)]
    out["schema_cpu_seconds"], _ = _cpu(lambda: [validate(
        "document", {"type": "manifest", "to": "beta", "items": b}) for b in batches])
    out["records_cpu_seconds"], _ = _cpu(lambda: [
        validate_submission("manifest", {}, b) for b in batches])
    out["entries_cpu_seconds"], made = _cpu(lambda: _entries(n, batches))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bridge.db")
        try:
            out["stage_cpu_seconds"], _ = _cpu(lambda: _stage(store, made))
        finally:
            store.close()
    print_figures(out, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
