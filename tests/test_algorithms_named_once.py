"""One file names the algorithms (DESIGN.md §7): in the whole package, only
``bridge/core/crypto/hashes.py`` imports ``hashlib`` (``suites.py`` names the rest of each
suite and gives these on; the hashes have a file of their own so that the Merkle tree needs no
cryptographic library); every other module takes its SHA-256 and SHAKE256 from there
(``sha256``, ``new_sha256``, ``shake256``), so that a change of hash is made, and reviewed, in
one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bridge"
NAMING_FILE = PACKAGE / "core" / "crypto" / "hashes.py"
ALGORITHM_MODULES = frozenset({"hashlib"})


def algorithm_imports(source: str) -> list[int]:
    """The lines of ``source`` that import a module of algorithms."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] in ALGORITHM_MODULES for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_hashes_module_imports_hashlib() -> None:
    # The core first, then the adapters too (the store check, the relay's subjects, backups,
    # the doctor's and the TLS fingerprints): a hash chosen by hand anywhere is found.
    found = {str(path.relative_to(PACKAGE)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if path != NAMING_FILE
             and (lines := algorithm_imports(path.read_text(encoding="utf-8")))}
    assert found == {}
    assert algorithm_imports(NAMING_FILE.read_text(encoding="utf-8"))


def test_a_hash_imported_directly_or_from_is_found() -> None:
    assert algorithm_imports("import os\nimport hashlib\n") == [2]
    assert algorithm_imports("def f():\n    from hashlib import sha256\n") == [2]
    assert algorithm_imports("import hmac\nfrom bridge.core.crypto import suites\n") == []
