"""What ``bridge verify`` of a whole-document receipt costs: peak RSS and CPU seconds.

    .venv/bin/python bench/receipt_verify.py                     # a 100,000-item manifest
    .venv/bin/python bench/receipt_verify.py --items 1000000 --keep DIR
    .venv/bin/python bench/receipt_verify.py --keep DIR --compare OLD   # an A/B, same run

The receiver's store is built directly, as ``bench/queries.py`` builds it (the peer's signed
manifest of N synthetic items and three acknowledgements: the listed exceptions, all the rest
RECEIVED, 5 % confirmed), its daemon started, and the whole-document receipt exported by the
daemon (``bridge receipt``, streamed to a file). Then ``bridge verify`` of that file runs as a
child process under /usr/bin/time (its own figures only: peak RSS and user + system CPU
seconds). With ``--compare DIR`` (a tree of another version, e.g. ``git archive main | tar -x
-C DIR``) the same command runs from that tree too, on the same file in the same run. With
``--keep DIR`` the homes, the keys and the receipt stay in DIR, and a later run with the same
``--keep`` measures that receipt again without building it. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queries import DOC_ID, build
from transcript_export import export_keys
from workload import print_figures

from bridge.client import BridgeClient
from bridge.daemon.pair import make_pair

MB = 1e6


def export_receipt(root: Path, n: int) -> Path:
    """The whole-document receipt of an ``n``-item manifest, as the daemon exports it."""
    a, b = make_pair(root / "homes")
    build(a, b, n)
    out = root / "document.receipt"
    a.start(timeout=1800)
    try:
        client = BridgeClient(a.home.socket_path, timeout=1800)
        with out.open("wb") as f:
            client.receipt_to(f.write, DOC_ID)
    finally:
        a.stop()
    export_keys(a, root)
    return out


def verify(root: Path, receipt: Path, code: Path | None, label: str) -> dict[str, Any]:
    """Peak RSS (MiB), CPU seconds and verdict of ``bridge verify RECEIPT`` run from the tree
    at ``code`` (None: this one), measured by /usr/bin/time, a small process of its own."""
    keys = [x for k in sorted((root / "keys").glob("*.pub")) for x in ("--keys", str(k))]
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as times:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", times.name,
                               sys.executable, "-m", "bridge", "verify", str(receipt), *keys],
                              env=env, cwd=code, capture_output=True, text=True, check=False)
        kib, user, system = times.read().split()[-3:]
    # The verdict, cut after the reason or the counts: a version that refuses the file (a
    # limit it has) says so here.
    said = proc.stdout.strip().replace(str(receipt), "FILE")[:160]
    return {f"verify{label}_peak_rss_mib": round(int(kib) / 1024, 1),
            f"verify{label}_cpu_seconds": round(float(user) + float(system), 2),
            f"verify{label}_said": said}


def measure(root: Path, items: int, compare: Path | None) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    receipt = root / "document.receipt"
    if not receipt.exists():
        receipt = export_receipt(root, items)
    figures: dict[str, Any] = {"receipt_mb": round(receipt.stat().st_size / MB, 1),
                               **verify(root, receipt, None, "")}
    if compare:
        figures.update(verify(root, receipt, compare.resolve(), "_compared"))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="make the homes and the receipt in DIR and keep them (a receipt "
                         "already there is measured again, not rebuilt)")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="a tree of another version: run its bridge verify too")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        figures = measure(args.keep or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bridge-receipt-"))), args.items, args.compare)
    print_figures(figures, as_json=args.json)


if __name__ == "__main__":
    main()
