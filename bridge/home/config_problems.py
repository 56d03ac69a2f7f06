"""A configuration file's validation errors said plainly: where (``[section]`` or
``[peers.NAME]``), which key, and what it must be, with the known keys when one is misspelt."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

from pydantic_core import ErrorDetails

from bridge.core.printable import QUOTED_CHARS, quoted, said

Sections = Mapping[str, tuple[Any, str]]  # section name: (its table class, its comment)
Named = Mapping[str, Any]  # tables of named entries ([peers.NAME]): their table class


def _known(loc: tuple[int | str, ...], sections: Sections, named: Named) -> list[str]:
    """The keys that may stand at ``loc`` (the section, or the peer, that holds it)."""
    if not loc:
        return [*sections, *named]
    if loc[0] in named:
        return [f.name for f in dataclasses.fields(named[str(loc[0])])]
    kind = sections.get(str(loc[0]), (None, ""))[0]
    return [f.name for f in dataclasses.fields(kind)] if kind else []


def _where(loc: tuple[int | str, ...], named: Named) -> str:
    if not loc:
        return ""
    if loc[0] in named and len(loc) > 1:
        return f"[{_part(loc[0])}.{_part(loc[1])}]"
    return f"[{_part(loc[0])}]"


def _key(path: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{_part(p)}" for p in path).lstrip(".")


def _part(name: int | str) -> str:
    # Names and values from the file are quoted cut (a 64 KiB key must not make a 64 KiB
    # error, nor a log line of it) and escaped (PROTOCOL.md §10, "Output").
    return said(name, QUOTED_CHARS)


def problem(error: ErrorDetails, sections: Sections, named: Named) -> str:
    """One validation error of the file, said as its reader would fix it."""
    loc = tuple(error["loc"])
    if error["type"] == "unexpected_keyword_argument":
        name, container = str(loc[-1]), loc[:-1]
        known = _known(container, sections, named)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        what = "key" if container else "section"
        return f"{_where(container, named)} {quoted(name)} is not a known {what}{hint}".lstrip()
    holder = loc[:2] if loc and loc[0] in named else loc[:1]
    subject = f"{_where(holder, named)} {_key(loc[len(holder):])}".strip()
    if error["type"].startswith("missing"):
        return f"{subject} is missing"
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    message = re.sub(r"must be a dictionary or an instance of \w+", "must be a table", message)
    if message.startswith("must be"):
        return f"{subject} {message}, not {said(repr(error['input']), QUOTED_CHARS)}"
    return f"{subject}: {message}"


MOST_PROBLEMS = 20
"""Problems of one file said at most: a file of 100,000 bad keys makes no 100,000-line error."""


def listed(problems: list[str]) -> str:
    """The problems, one an indented line, the first ``MOST_PROBLEMS`` of them."""
    more = len(problems) - MOST_PROBLEMS
    shown = problems[:MOST_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
    return "\n  " + "\n  ".join(shown)


__all__ = ["MOST_PROBLEMS", "listed", "problem"]
