"""schemas/local-api.yaml is a valid OpenAPI 3.1 document and describes every route the daemon
serves (and no route it does not)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bridge.local.api import LocalApi

SPEC = Path(__file__).resolve().parent.parent / "schemas" / "local-api.yaml"


def spec_operations() -> set[tuple[str, str]]:
    """(METHOD, path) pairs, read from the YAML's layout (two-space paths, four-space verbs)."""
    ops = set()
    path = None
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^  (/\S*):\s*$", line):
            path = m.group(1)
        elif re.match(r"^\S", line):
            path = None
        elif path and (m := re.match(r"^    (get|post|put|delete|patch):\s*$", line)):
            ops.add((m.group(1).upper(), path))
    return ops


def served_operations() -> set[tuple[str, str]]:
    async def build() -> Any:
        api = LocalApi(exchange=None, run=None, metrics=None,  # type: ignore[arg-type]
                       events_changed=asyncio.Condition(), peer_status=dict, max_body=1)
        return api.app()

    app = asyncio.run(build())
    ops = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        ops.add((route.method, path))
    return ops


def test_every_route_is_described() -> None:
    served, described = served_operations(), spec_operations()
    assert served - described == set(), "served but not in local-api.yaml"
    assert described - served == set(), "in local-api.yaml but not served"


def test_spec_is_valid_openapi() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    yaml = pytest.importorskip("yaml")
    validator.validate(yaml.safe_load(SPEC.read_text(encoding="utf-8")),
                       base_uri=SPEC.as_uri())
