"""``bridge --help`` imports every command's module (click asks each for its short help): no
module of a command loads the daemon's wiring (aiohttp, nats) or the configuration model
(pydantic) at import, only when its command runs. Figures are in ``bench/``, not here."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_start import loaded_by

WIRING = ("pydantic", "aiohttp", "nats", "bridge.home.config", "bridge.daemon.pair",
          "bridge.witness.process")


def test_bridge_help_loads_no_daemon_wiring_and_no_configuration_model(tmp_path: Path) -> None:
    assert loaded_by(tmp_path / "home", "--help", heavy=WIRING) == []


@pytest.mark.parametrize("command", ["demo", "doctor", "peer", "witness"])
def test_a_command_loads_its_wiring_only_when_it_runs(tmp_path: Path, command: str) -> None:
    assert loaded_by(tmp_path / "home", command, "--help", heavy=WIRING) == []
