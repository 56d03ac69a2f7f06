"""The layers hold (DESIGN §2: a sans-I/O core, thin adapters), by import-linter's contracts in
pyproject.toml: rooms import only rooms below them, no adapter imports another, the pure rooms
import no I/O framework, the client only the core.

The contracts are checked here as ``make lint`` checks them, and shown to fail on a copy of the
package into which an offending import is written. A last test imports the pure rooms in a fresh
interpreter and looks at ``sys.modules``: import-linter reads ``import`` statements, so it sees
neither ``importlib.import_module("sqlite3")`` nor a third-party library that loads asyncio.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "bridge"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def purity_contract() -> dict[str, Any]:
    (contract,) = [c for c in contracts() if c["name"].startswith("The pure rooms")]
    return contract


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` run in ``where`` (its pyproject.toml, its ``bridge``), without a cache."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=where,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)})


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


# Offending imports, each written into a copy of the package, and the contract that must name it.
OFFENCES = [
    # The core reaching an adapter: the layers contract names the import.
    ("core/merkle.py", "import bridge.store.sqlite.store", "Layers point down",
     "bridge.core.merkle -> bridge.store.sqlite.store"),
    # ... even inside a function, where it runs only when called.
    ("core/crypto/identity.py",
     "def _late() -> None:\n    from bridge.transports.http import endpoint",
     "Layers point down", "bridge.core.crypto.identity -> bridge.transports.http.endpoint"),
    # The core importing an I/O framework.
    ("core/envelope.py", "import asyncio", "The pure rooms", "bridge.core.envelope -> asyncio"),
    ("records/categories.py", "import sqlite3", "The pure rooms",
     "bridge.records.categories -> sqlite3"),
    # ... and the relay's client, which is not even installed: the name is enough.
    ("core/codec.py", "def _relay() -> None:\n    import nats.js", "The pure rooms",
     "bridge.core.codec -> nats"),
    # One adapter importing another, though the layers allow it (the same layer).
    ("local/access.py", "from bridge.transports.http import limits", "The local API",
     "bridge.local.access -> bridge.transports.http.limits"),
    ("store/sqlite/audit_db.py", "import bridge.local.api", "The store imports",
     "bridge.store.sqlite.audit_db -> bridge.local.api"),
    # The client taking more than the core.
    ("client.py", "import bridge.home.folder", "The client", "bridge.client -> bridge.home.folder"),
]


def broken_contracts(stdout: str) -> dict[str, str]:
    """Each broken contract's name and the text of its report (the imports it names)."""
    lines = stdout.split("Broken contracts", 1)[1].splitlines()
    # A report starts with the contract's name, underlined by dashes of the same length.
    starts = [k for k in range(len(lines) - 1)
              if lines[k] and set(lines[k + 1]) == {"-"} and len(lines[k + 1]) == len(lines[k])]
    return {lines[k]: "\n".join(lines[k:end])
            for k, end in zip(starts, [*starts[1:], len(lines)], strict=True)}


@pytest.fixture(scope="module")
def offended() -> dict[str, str]:
    """lint-imports' broken contracts on a copy of the package with every offence written in
    (one run, not one per offence: each is looked for in the report of its own contract)."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        shutil.copytree(PACKAGE_DIR, where / "bridge",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
        for module, line, _, _ in OFFENCES:
            path = where / "bridge" / module
            path.write_text(path.read_text(encoding="utf-8") + "\n\n" + line + "\n",
                            encoding="utf-8")
        result = lint_imports(where)
    assert result.returncode != 0, result.stdout
    return broken_contracts(result.stdout)


@pytest.mark.parametrize(("module", "line", "contract", "named"), OFFENCES,
                         ids=[o[3] for o in OFFENCES])
def test_the_contracts_fail_when_a_room_imports_what_it_must_not(
        offended: dict[str, str], module: str, line: str, contract: str, named: str) -> None:
    reports = [text for name, text in offended.items() if name.startswith(contract)]
    assert reports, f"{contract!r} is not broken: {sorted(offended)}"
    assert named in reports[0], reports[0]


def pure_modules() -> list[str]:
    """Every module of the purity contract's source modules (packages walked)."""
    found: list[str] = []
    for name in purity_contract()["source_modules"]:
        base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
        if base.with_suffix(".py").is_file():
            found.append(name)
            continue
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
            found.append(".".join(("bridge", *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return found


def test_the_pure_rooms_load_no_io_framework_at_run_time() -> None:
    forbidden = sorted(purity_contract()["forbidden_modules"])
    modules = pure_modules()
    assert "bridge.core.crypto.identity" in modules and "bridge.records.schema" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = {forbidden!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []
