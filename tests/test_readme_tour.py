"""The README's tour runs exactly as written: every ``sh`` block marked ``<!-- tour -->`` is
run, in the README's order, by one bash in an empty folder holding a copy of ``examples/``,
with this Bridge first on the PATH (what activating its virtual environment does). Real
daemons, real sockets, real HTTP on 127.0.0.1; a command that fails fails the test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- tour -->"


def tour_blocks(readme: str) -> list[str]:
    """The marked blocks, in order: each is the ``sh`` block right after a marker line."""
    blocks = re.findall(re.escape(MARK) + r"\n```sh\n(.*?)\n```", readme, flags=re.S)
    assert readme.count(MARK) == len(blocks), "a tour marker not followed by a sh block"
    return blocks


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = tour_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # Daemons the tour started are stopped whatever happens (the tour's last block stops
    # them itself: this is for a tour that failed half-way).
    script = "\n".join(["set -euo pipefail",
                        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", *blocks, ""])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "COLUMNS": "120"}
    env.pop("BRIDGE_HOME", None)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in tmp_path.glob("*.log"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:] + logs
    out = done.stdout
    assert "OK: BAG-0002.receipt" in out and "DISPUTED" in out, out[-3000:]
    for made in ("BAG-0002.receipt", "MANIFEST-7.receipt", "reconciliation.csv",
                 "reconciliation.html"):
        assert (tmp_path / made).stat().st_mode & 0o777 == 0o600, made
    assert not (tmp_path / "alpha" / "bridge.sock").exists()  # the daemons stopped cleanly
