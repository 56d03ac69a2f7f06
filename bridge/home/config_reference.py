"""``CONFIGURATION.md``, generated from the configuration model (``bridge/home/config.py``):
every section and key, its type, its default and what it does, as the code reads them.

    python -m bridge.home.config_reference > CONFIGURATION.md

A test keeps the document and the model equal.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic.fields import FieldInfo

from bridge.home.config import SECTIONS, PeerTable, WitnessTable, keys_of

# What a value is, in the words of the reference (TOML's types as people say them).
KINDS: dict[type, str] = {int: "whole number", float: "number", bool: "true or false",
                          str: "string", list: "list of uids"}


def _kind(annotation: Any) -> str:
    """The TOML type of a field: ``Annotated`` and ``| None`` peeled off."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Literal:
            return "string: " + " or ".join(f'"{a}"' for a in typing.get_args(annotation))
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Literal:  # a choice of strings: name them
            return "one of " + ", ".join(f'"{a}"' for a in typing.get_args(annotation))
        elif origin in (types.UnionType, typing.Union):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        elif origin is not None:
            annotation = origin
        else:
            return KINDS[annotation]


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    return f"`{default!r}`".replace("'", '"')


def _rows(table: type) -> list[str]:
    fields: dict[str, FieldInfo] = table.__pydantic_fields__  # type: ignore[attr-defined]
    hints = typing.get_type_hints(table, include_extras=True)
    return [f"| `{name}` | {_kind(hints[name])} | {_default(fields[name])} | "
            f"{fields[name].description} |" for name in keys_of(table)]


def reference_markdown() -> str:
    lines = ["# bridge.toml: the configuration reference", "",
             "Generated from the configuration model in `bridge/home/config.py` "
             "(`python -m bridge.home.config_reference > CONFIGURATION.md`); a test keeps the "
             "two equal. Every section and key is checked when the file is read: an unknown "
             "one, or a value of the wrong type or out of range, is an error that names it "
             "(the daemon does not start), and every problem is listed at once. Times are in "
             "seconds.", ""]
    tables = [(name, table) for name, (table, _) in SECTIONS.items()]
    for name, table in [*tables, ("peers.NAME", PeerTable), ("witnesses.NAME", WitnessTable)]:
        lines += [f"## [{name}]", "", "| key | type | default | what it does |",
                  "|---|---|---|---|", *_rows(table), ""]
    lines += ["`bridge peer add` writes the `[peers.NAME]` tables, `bridge relay join` the "
              "`[relay]` table, `bridge witness pin` the `[witnesses.NAME]` tables; `bridge "
              "init` writes the others.", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the generator of CONFIGURATION.md
    sys.stdout.write(reference_markdown())
