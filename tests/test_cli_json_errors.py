"""Every ``--json`` command prints its error as the ``{"error": …}`` object on standard output,
so a script that parses the output gets a reason code, not an empty string (``keys`` and
``tls`` printed their errors as text only). ``doctor`` on a home that does not exist says so,
rather than calling the missing folders private."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _bridge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("args", [["keys", "show", "--json"], ["tls", "show", "--json"],
                                  ["tls", "init", "--json"]])
def test_json_command_on_a_missing_home_prints_a_json_error(tmp_path: Path,
                                                            args: list[str]) -> None:
    done = _bridge(tmp_path / "absent", *args)
    assert done.returncode == 1, done
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "usage" and "no Bridge home" in error["message"]
    assert not (tmp_path / "absent").exists()


def test_doctor_does_not_call_a_missing_home_private(tmp_path: Path) -> None:
    done = _bridge(tmp_path / "absent", "doctor", "--json")
    assert done.returncode == 1
    folders = {f["check"]: f for f in json.loads(done.stdout)}["folders"]
    assert folders["status"] == "fail" and "does not exist" in folders["detail"]
    assert not (tmp_path / "absent").exists()
