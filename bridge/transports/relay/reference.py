"""The reference of ``relay.toml`` (the mediator's relay configuration), generated from its
model (bridge/transports/relay/mediator.py) as ``CONFIGURATION.md`` is from ``bridge.toml``'s;
README's "relay.toml" table is this text, and a test keeps the two equal.

    python -m bridge.transports.relay.reference
"""

from __future__ import annotations

import sys
import typing

from pydantic.fields import FieldInfo

from bridge.home.config_reference import _default, _kind
from bridge.transports.relay.mediator import PartyEntry, RelaySettings, WitnessEntry


def _kind_of(annotation: object) -> str:
    if typing.get_origin(annotation) is list:
        return "list of party names"
    return _kind(annotation)


def _rows(table: type) -> list[str]:
    fields: dict[str, FieldInfo] = table.__pydantic_fields__  # type: ignore[attr-defined]
    hints = typing.get_type_hints(table, include_extras=True)
    return [f"| `{name}` | {_kind_of(hints[name])} | {_default(fields[name])} | "
            f"{fields[name].description} |" for name in fields]


def relay_reference_markdown() -> str:
    lines = []
    for name, table in (("relay", RelaySettings), ("parties.NAME", PartyEntry),
                        ("witnesses.NAME", WitnessEntry)):
        lines += [f"`[{name}]`", "", "| key | type | default | what it does |",
                  "|---|---|---|---|", *_rows(table), ""]
    return "\n".join(lines)


__all__ = ["relay_reference_markdown"]

if __name__ == "__main__":  # pragma: no cover - prints README's relay.toml tables
    sys.stdout.write(relay_reference_markdown())
