"""What ``bridge audit export`` holds in memory: the transcript built whole, or streamed.

    .venv/bin/python bench/transcript_export.py                  # a 100,000-item manifest
    .venv/bin/python bench/transcript_export.py --items 20000 --json
    .venv/bin/python bench/transcript_export.py --keep DIR       # keep the two homes in DIR

Two daemons exchange one manifest of N synthetic items (``workload``), acknowledged whole, and
stop. Then, in this process, on the sender's store: the transcript read whole and built
(``transcript_parts``, ``build_transcript``: what the export did before it streamed) and the
transcript streamed (``transcript_source``, ``stream_transcript``), each written to a file; the
peak of Python allocations (tracemalloc) and the CPU seconds of each, and that both files are
the same bytes; then the check of that file as it is read a piece at a time
(``check_transcript_file``): its peak traced allocations and CPU seconds. Last, ``bridge audit
export`` (which checks the file it wrote) and ``bridge verify`` of its file, each as a child
process under /usr/bin/time: peak RSS and CPU seconds. With ``--compare DIR`` (a tree of
another version, e.g. ``git archive main | tar -x -C DIR``) the same two commands run from that
tree too, on the same store in the same run, for an A/B of the two versions. A measurement,
never a test.

    .venv/bin/python bench/transcript_export.py --items 100000 --compare DIR
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

from bridge.core.transcript import build_transcript, check_transcript_file, stream_transcript
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


def in_process(node: Node, root: Path, *, whole_too: bool = True) -> dict[str, Any]:
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
        streamed_mib, streamed_cpu = _measured(piecewise, streamed)
        out = {"transcript_mib": round(streamed.stat().st_size / MIB, 1),
               "streamed_peak_traced_mib": streamed_mib, "streamed_cpu_seconds": streamed_cpu}
        if whole_too:
            whole_mib, whole_cpu = _measured(built, whole)
            out.update(same_bytes=_same(whole, streamed), whole_peak_traced_mib=whole_mib,
                       whole_cpu_seconds=whole_cpu)
            whole.unlink()
    return out


def _same(a: Path, b: Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(MIB), fb.read(MIB)
            if x != y:
                return False
            if not x:
                return True


def checked(node: Node, root: Path) -> dict[str, Any]:
    """The streamed file checked as it is read (in this process): peak traced MiB, CPU."""
    keys = node.home.keyring()
    path = root / "streamed.transcript"
    tracemalloc.start()
    t0 = time.process_time()
    result = check_transcript_file(lambda: path.open("rb"), keys)
    cpu = time.process_time() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if not result.ok:
        raise SystemExit(f"the streamed transcript does not check: {result.summary()}")
    return {"check_peak_traced_mib": round(peak / MIB, 1), "check_cpu_seconds": round(cpu, 2)}


def _child(args: list[str], code: Path | None) -> tuple[float, float, str | None]:
    """Peak RSS (MiB) and CPU seconds of ``python -m bridge ARGS``, run from the tree at
    ``code`` (None: this one), and what it said if it failed. Measured by /usr/bin/time, a
    small process of its own: the rusage of a child forked from this process counts this
    process's pages it starts with (some hundreds of MiB after the in-process figures)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as figures:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", figures.name,
                               sys.executable, "-m", "bridge", *args], env=env, cwd=code,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        kib, user, system = figures.read().split()[-3:]
    # A version that refuses the file (a limit it has) says so in the figures, not a stop.
    failed = proc.stderr.decode()[-300:].strip() if proc.returncode else None
    return round(int(kib) / 1024, 1), round(float(user) + float(system), 2), failed


def cli_export(node: Node, root: Path, code: Path | None = None,
               label: str = "") -> dict[str, Any]:
    """``bridge audit export`` then ``bridge verify`` of its file, as children."""
    out = root / f"cli{label}.transcript"
    home = node.home.path
    rss, cpu, failed = _child(["--home", str(home), "audit", "export", "--peer", "beta",
                               "-o", str(out)], code)
    keys = [str(p) for p in sorted((root / "keys").glob("*.pub"))]
    v_rss, v_cpu, v_failed = _child(["verify", str(out),
                                     *(x for k in keys for x in ("--keys", k))], code)
    figures: dict[str, Any] = {
        f"cli{label}_peak_rss_mib": rss, f"cli{label}_cpu_seconds": cpu,
        f"verify{label}_peak_rss_mib": v_rss, f"verify{label}_cpu_seconds": v_cpu}
    if failed or v_failed:
        figures[f"cli{label}_failed"] = failed or v_failed
    return figures


def export_keys(node: Node, root: Path) -> None:
    """Both parties' public identities, for ``bridge verify --keys``."""
    (root / "keys").mkdir(exist_ok=True)
    for ident in {i.key_id: i for i in node.home.keyring().by_id.values()}.values():
        (root / "keys" / f"{ident.party}-{ident.key_id.hex()[:8]}.pub").write_text(
            ident.dumps())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="make the homes in DIR and keep them (to run an export on them again)")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="a tree of another version: run its export and verify too")
    ap.add_argument("--no-whole", action="store_true",
                    help="leave out the transcript built whole in this process (gigabytes "
                         "at a million items)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bridge-transcript-")))
        root.mkdir(parents=True, exist_ok=True)
        node = exchange(root, args.items)
        export_keys(node, root)
        figures = {"items": args.items, **in_process(node, root, whole_too=not args.no_whole),
                   **checked(node, root), **cli_export(node, root)}
        if args.compare:
            figures.update(cli_export(node, root, args.compare.resolve(), "_compared"))
    print_figures(figures, as_json=args.json)


if __name__ == "__main__":
    main()
