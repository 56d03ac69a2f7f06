"""Every module of the engine, the store and the core imports on its own, first: a cycle
between two modules (``queries`` → ``witnessing`` → ``peer_checkpoints`` → ``outbound`` →
``queries`` was one) breaks only the program that happens to import one of them before the
other, so the daemon's own order hides it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("core", "records", "store", "engine")

_PROBE = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "bridge" or m.startswith("bridge.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{name}: {exc}")
print("\\n".join(failed))
"""


def _modules() -> list[str]:
    names = []
    for room in ROOMS:
        for path in sorted((ROOT / "bridge" / room).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_each_module_of_the_pure_and_middle_rooms_imports_first_without_a_cycle() -> None:
    names = _modules()
    assert "bridge.engine.queries" in names and len(names) > 50
    out = subprocess.run([sys.executable, "-c", _PROBE, *names], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True).stdout.strip()
    assert out == ""
