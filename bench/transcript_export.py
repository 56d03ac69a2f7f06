"""What ``bridge audit export`` holds in memory: the transcript built whole, or streamed.

    .venv/bin/python bench/transcript_export.py                  # a 100,000-item manifest
    .venv/bin/python bench/transcript_export.py --items 20000 --json
    .venv/bin/python bench/transcript_export.py --keep DIR       # keep the two homes in DIR

Two daemons exchange one manifest of N synthetic items (``workload``), acknowledged whole, and
stop. Then, in this process, on the sender's store: the transcript read whole and built
(``transcript_parts``, ``build_transcript``: what the export did before it streamed) and the
transcript streamed (``transcript_source``, ``stream_transcript``), each written to a file; the
peak of Python allocations (tracemalloc) and the CPU seconds of each, and that both files are
the same bytes. Last, ``bridge audit export`` itself as a child process: its peak RSS (which
includes the check of the file it wrote, done whole). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import iter_items, print_figures

from bridge.core.transcript import build_transcript, stream_transcript
from bridge.daemon.pair import Node, make_pair
from bridge.store.sqlite import audit_db

MIB = 1 << 20


def exchange(root: Path, n: int) -> Node:
    """alpha sends ``n`` items to beta, who acknowledges them all; both stopped after."""
    alpha, beta = make_pair(root)
    alpha.start()
    beta.start()
    try:
        doc = alpha.client.submit_document_stream("manifest", "beta", iter_items(n), count=n,
                                                  id="M-TRANSCRIPT")
        _until(lambda: any(d["id"] == doc["id"] and d["state"] == "received"
                           for d in beta.client.documents(direction="in")))
        beta.client.acknowledge(doc["id"], all="RECEIVED")
        _until(lambda: alpha.client.document(doc["id"])["state"] == "acknowledged"
               and alpha.client.health()["peers"]["beta"]["queued"] == 0)
    finally:
        alpha.stop()
        beta.stop()
    return alpha


def _until(done: Callable[[], bool], timeout: float = 1800) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise SystemExit("the exchange did not finish")
        time.sleep(0.2)


def _measured(make: Callable[[], Iterable[bytes]], out: Path) -> tuple[float, float]:
    """Peak traced MiB and CPU seconds of writing what ``make`` makes to ``out``."""
    tracemalloc.start()
    t0 = time.process_time()
    with out.open("wb") as f:
        for piece in make():
            f.write(piece)
    cpu = time.process_time() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / MIB, 1), round(cpu, 2)


def in_process(node: Node, root: Path) -> dict[str, Any]:
    conn = audit_db.connect(node.home.db_path)
    whole, streamed = root / "whole.transcript", root / "streamed.transcript"
    common: dict[str, Any] = {"parties": ("alpha", "beta"), "exported_at": 0}

    def built() -> Iterable[bytes]:
        parts = audit_db.transcript_parts(conn, "beta", with_entries=True)
        return [build_transcript(documents=parts.documents, outbound=parts.outbound,
                                 inbound=parts.inbound, **common)]

    def piecewise() -> Iterable[bytes]:
        src = audit_db.transcript_source(conn, "beta", with_entries=True)
        return stream_transcript(documents=src.documents, inbound=src.inbound,
                                 outbound=(src.outbound, src.envelopes()), **common)

    with contextlib.closing(conn), audit_db.snapshot(conn):
        whole_mib, whole_cpu = _measured(built, whole)
        streamed_mib, streamed_cpu = _measured(piecewise, streamed)
    return {"transcript_mib": round(whole.stat().st_size / MIB, 1),
            "same_bytes": whole.read_bytes() == streamed.read_bytes(),
            "whole_peak_traced_mib": whole_mib, "whole_cpu_seconds": whole_cpu,
            "streamed_peak_traced_mib": streamed_mib, "streamed_cpu_seconds": streamed_cpu}


def cli_export(node: Node, root: Path) -> dict[str, Any]:
    """``bridge audit export`` as a child: its peak RSS (Linux ru_maxrss, KiB) and CPU."""
    out = root / "cli.transcript"
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "--home", str(node.home.path),
                             "audit", "export", "--peer", "beta", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bridge audit export failed: {proc.stderr.read().decode()[-500:]}"
                         if proc.stderr else "bridge audit export failed")
    return {"cli_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "cli_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="make the homes in DIR and keep them (to run an export on them again)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bridge-transcript-")))
        root.mkdir(parents=True, exist_ok=True)
        node = exchange(root, args.items)
        figures = {"items": args.items, **in_process(node, root), **cli_export(node, root)}
    print_figures(figures, as_json=args.json)


if __name__ == "__main__":
    main()
