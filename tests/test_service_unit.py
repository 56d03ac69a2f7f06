"""The systemd unit runs the daemon hardened (a dedicated user, the home as the only writable
path, no new privileges, restart on failure), and the daemon can log JSON for the journal."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

from bridge.daemon.logs import setup_logging

UNIT = Path(__file__).resolve().parent.parent / "packaging" / "bridge@.service"


def _directives() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_unit_is_hardened_and_writes_only_its_home() -> None:
    service = _directives()["Service"]
    one = {k: v[-1] for k, v in service.items()}
    home = re.search(r"--home (\S+) daemon", one["ExecStart"])
    assert home and one["ReadWritePaths"] == home.group(1)
    assert one["User"] == "bridge" and one["User"] != "root"
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "UMask": "0077",
                       "Restart": "on-failure", "PrivateTmp": "yes", "ProtectHome": "yes",
                       "CapabilityBoundingSet": "", "KillSignal": "SIGTERM"}.items():
        assert one[key] == value, key
    assert "--log-format json" in one["ExecStart"]
    assert one["ExecReload"].endswith("-HUP $MAINPID")
    assert _directives()["Install"]["WantedBy"] == ["multi-user.target"]


def test_json_logs_are_one_object_a_line() -> None:
    out = io.StringIO()
    setup_logging("info", stream=out, fmt="json")
    try:
        logging.getLogger("bridge.test").info("ready: %s", "alpha \"quoted\"\nnext")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("bridge.test").exception("failed")
    finally:
        setup_logging("info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "ready: alpha \"quoted\"\nnext" and first["level"] == "info"
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]
