"""The offline carrier end to end: two real daemons that never reach each other.

    python bench/carry.py --items 100000 [--json]

Starts two daemons whose peers are pinned ``via = "carry"``, submits an N-item manifest, and
times each step by hand: alpha's export, beta's import (which writes the receipts), alpha's
import of the receipts; then beta acknowledges every item and the acknowledgement travels
back the same way. Prints each step's time and the files' sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import manifest_items

from bridge.client import BridgeClient
from bridge.daemon.pair import Node, make_pair
from bridge.home.folder import Home


def carried_by_hand(home: Home) -> None:
    cfg = home.config()
    home.write_config(dataclasses.replace(cfg, peers={
        n: dataclasses.replace(p, via="carry", url=None) for n, p in cfg.peers.items()}))


def bridge(*args: object) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bridge", *map(str, args)], check=True,
                   capture_output=True, timeout=3600)
    return time.perf_counter() - t0


def shuttle(src: Node, dst: Node, folder: Path, name: str) -> dict[str, float]:
    env, rec = folder / f"{name}.carry", folder / f"{name}.receipts"
    out = {"export_s": bridge("--home", src.home.path, "carry", "export", "--to", dst.party,
                              "-o", env)}
    out["import_s"] = bridge("--home", dst.home.path, "carry", "import", env, "-o", rec)
    out["receipts_s"] = bridge("--home", src.home.path, "carry", "import", rec)
    out["file_bytes"] = env.stat().st_size
    out["receipts_bytes"] = rec.stat().st_size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        alpha, beta = make_pair(root)
        for node in (alpha, beta):
            carried_by_hand(node.home)
            node.start(timeout=60)
        try:
            a, b = (BridgeClient(n.home.socket_path, timeout=600) for n in (alpha, beta))
            a.submit_document("manifest", beta.party, manifest_items(args.items), id="M-BENCH")
            there = shuttle(alpha, beta, root, "manifest")
            b.acknowledge("M-BENCH", all="RECEIVED")
            back = shuttle(beta, alpha, root, "ack")
            acked = a.document("M-BENCH")["items"]["acknowledged"]
        finally:
            alpha.stop()
            beta.stop()
    result = {"items": args.items, "manifest": there, "acknowledgement": back,
              "acknowledged_at_sender": acked}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for what, r in (("manifest", there), ("acknowledgement", back)):
        print(f"{what:16} export {r['export_s']:.2f} s, import {r['import_s']:.2f} s, receipts "
              f"{r['receipts_s']:.2f} s; file {r['file_bytes']:,} bytes, receipts "
              f"{r['receipts_bytes']:,} bytes")
    print(f"acknowledged at the sender: {acked:,} of {args.items:,}")


if __name__ == "__main__":
    main()
