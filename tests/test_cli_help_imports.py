"""``bridge --help`` imports every command's module (click asks each for its short help): no
module of a command loads the daemon's wiring (aiohttp, nats) or the configuration model
(pydantic) at import, only when its command runs. Figures are in ``bench/``, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

WIRING = ("pydantic", "aiohttp", "nats", "bridge.home.config", "bridge.daemon.pair",
          "bridge.witness.process")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys, json\n{code}\n"
             f"wiring = {WIRING!r}\n"
             "print(json.dumps(sorted({w for w in wiring for m in sys.modules\n"
             "                         if m == w or m.startswith(w + '.')})))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_bridge_help_loads_no_daemon_wiring_and_no_configuration_model() -> None:
    assert _loaded_after("from bridge.cli.main import main\n"
                         "try:\n    main(['--help'])\nexcept SystemExit:\n    pass") == []


@pytest.mark.parametrize("module", ["demo", "doctor", "peer", "witness"])
def test_a_command_module_loads_its_wiring_only_when_it_runs(module: str) -> None:
    assert _loaded_after(f"import bridge.cli.{module}") == []
