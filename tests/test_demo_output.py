"""``bridge demo`` never ends pointing at files it has deleted: every path it names in its
last lines exists after it exits (its own folder is deleted unless ``--keep``, and it says
so)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_the_demo_names_no_path_it_deleted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bridge", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tail = done.stdout.splitlines()[-4:]
    named = [Path(p) for line in tail for p in re.findall(r"(/\S+[^\s.,:;)])", line)]
    gone = [p for p in named if not p.exists()]
    # Only the deleted folder itself may be named, and only as deleted.
    for path in gone:
        line = next(x for x in tail if str(path) in x)
        assert "deleted" in line and "--keep" in line, line
    receipts = re.search(r"Receipts exported to (\S+) ", done.stdout)
    assert receipts and not Path(receipts.group(1)).exists()
    assert any("deleted" in line and receipts.group(1).startswith(str(p))
               for line in tail for p in gone), tail
