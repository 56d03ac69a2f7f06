"""What a ``bridge`` command loads before it does its work: every CLI call of the tests and of a
person pays for it. ``bridge send`` and ``bridge status --json`` reach the daemon through the
home's socket: they load neither the configuration model (pydantic), nor the keys' cryptography,
nor rich. Figures (CPU seconds of each start) are in ``bench/``, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bridge.core.documents import DOCUMENT_TYPES as CORE_DOCUMENT_TYPES
from bridge.records.importers import DOCUMENT_TYPES

HEAVY = ("pydantic", "rich", "cryptography", "nacl", "aiohttp", "bridge.home.config",
         "bridge.core.crypto.suites", "bridge.records.importers.acks")


def loaded_by(home: Path, *args: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``heavy`` modules loaded once ``bridge --home HOME ARGS`` has run (its daemon is
    not running: the command gets as far as reaching for it)."""
    code = ("import sys, json\n"
            "from bridge.cli.main import main\n"
            "try:\n"
            f"    main({['--home', str(home), *args]!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"heavy = {heavy!r}\n"
            "print(json.dumps(sorted({h for h in heavy for m in sys.modules\n"
            "                         if m == h or m.startswith(h + '.')})))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_send_of_a_csv_loads_no_configuration_model_keys_or_rich(tmp_path: Path) -> None:
    csv = tmp_path / "roster.csv"
    csv.write_text("id,surname,first_names\nPOW-1,Avenor,Ari\n", encoding="utf-8")
    assert loaded_by(tmp_path / "home", "send", "roster", str(csv), "--category", "pow",
                     "--to", "beta") == []


def test_status_as_json_loads_no_configuration_model_keys_or_rich(tmp_path: Path) -> None:
    assert loaded_by(tmp_path / "home", "status", "--json") == []


def test_send_names_the_document_types_the_core_knows() -> None:
    assert DOCUMENT_TYPES == CORE_DOCUMENT_TYPES
