"""The pure core imports no I/O framework (DESIGN §2: a sans-I/O core, thin adapters).

Walks the ``import`` statements of each core module with ``ast`` (including imports inside
functions), follows every ``bridge.*`` import transitively, and fails naming the chain that
reaches a forbidden module. A second test imports the core in a fresh interpreter and looks at
``sys.modules``, which also catches imports that ``ast`` cannot see (``importlib``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "bridge"
# Every module of these rooms is pure: the core, the records and the reports' rules and model.
PURE_ROOMS = ["core", "records"]
PURE_MODULES = ["reports.rules", "reports.model", "reports.build", "home.files"]
FORBIDDEN = frozenset({"asyncio", "aiohttp", "sqlite3", "_sqlite3"})


def core_modules() -> list[str]:
    found = list(PURE_MODULES)
    for room in PURE_ROOMS:
        for path in sorted((PACKAGE_DIR / room).rglob("*.py")):
            parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [f"bridge.{m}" for m in found]


def module_file(package_dir: Path, module: str) -> Path | None:
    """The source file of ``module`` (``pkg`` or ``pkg.sub``) inside ``package_dir``."""
    parts = module.split(".")[1:]
    if not parts:
        return package_dir / "__init__.py"
    candidate = package_dir.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


def imports_of(path: Path, module: str, package: str, package_dir: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Relative: resolve against this module's package (PEP 328).
                base_parts = module.split(".")
                if not is_package:
                    base_parts = base_parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from bridge import codec` imports the submodule bridge.core.codec.
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub.split(".")[0] == package and module_file(package_dir, sub):
                    found.add(sub)
    return found


def forbidden_chains(roots: list[str], *, package: str = "bridge",
                     package_dir: Path = PACKAGE_DIR,
                     forbidden: frozenset[str] = FORBIDDEN) -> list[str]:
    """Every path from a root module to a forbidden import, as "a -> b -> sqlite3"."""
    problems: list[str] = []
    for root in roots:
        seen: set[str] = set()
        stack: list[tuple[str, tuple[str, ...]]] = [(root, (root,))]
        while stack:
            module, chain = stack.pop()
            if module in seen:
                continue
            seen.add(module)
            path = module_file(package_dir, module)
            if path is None:
                continue
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
            for name in sorted(imports_of(path, module, package, package_dir) | parents):
                top = name.split(".")[0]
                if top in forbidden:
                    problems.append(" -> ".join((*chain, name)))
                elif top == package and name not in seen:
                    stack.append((name, (*chain, name)))
    return sorted(set(problems))


@pytest.mark.parametrize("module", core_modules())
def test_core_module_imports_no_io_framework(module: str) -> None:
    assert module_file(PACKAGE_DIR, module) is not None, f"{module} not found"
    chains = forbidden_chains([module])
    assert not chains, "the pure core must not import I/O frameworks:\n  " + "\n  ".join(chains)


def test_core_import_loads_no_io_framework_at_run_time() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        f"bad = {sorted(FORBIDDEN)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []


# ---------------------------------------------------------------- the walker itself


def _write(pkg: Path, name: str, text: str) -> None:
    path = pkg.joinpath(*name.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "fake"
    _write(pkg, "__init__.py", "")
    _write(pkg, "pure.py", "import hashlib\nfrom fake import helper\n")
    _write(pkg, "helper.py", "from .deep import thing\n")
    _write(pkg, "deep.py", "def thing():\n    import sqlite3\n    return sqlite3\n")
    _write(pkg, "clean.py", "import json\nfrom fake.sub import leaf\n")
    _write(pkg, "sub/__init__.py", "from ..clean_leaf import x\n")
    _write(pkg, "sub/leaf.py", "from . import other\n")
    _write(pkg, "sub/other.py", "import asyncio.events\n")
    _write(pkg, "clean_leaf.py", "x = 1\n")
    return pkg


def test_walker_finds_indirect_imports_inside_functions(fake_package: Path) -> None:
    chains = forbidden_chains(["fake.pure"], package="fake", package_dir=fake_package)
    assert chains == ["fake.pure -> fake.helper -> fake.deep -> sqlite3"]


def test_walker_follows_relative_and_package_imports(fake_package: Path) -> None:
    chains = forbidden_chains(["fake.clean"], package="fake", package_dir=fake_package)
    assert chains == ["fake.clean -> fake.sub.leaf -> fake.sub.other -> asyncio.events"]


def test_walker_passes_a_clean_module(fake_package: Path) -> None:
    assert forbidden_chains(["fake.clean_leaf"], package="fake", package_dir=fake_package) == []
