"""Text from outside made safe to show (PROTOCOL.md §10, "Output").

Every string a peer chose (ids, reasons, evidence, party and category names, ``meta`` values),
and every string read from a file or from the daemon's answers, reaches a terminal, a report or
a spreadsheet only through here. A character that is not printable (C0 and C1 controls such as
ESC and CSI, DEL, line and paragraph separators, bidi overrides and other format characters,
lone surrogates, unassigned code points) is shown as its Python escape (``\\x1b``, ``\\u202e``):
visible, and unable to move the cursor, clear the screen, open an OSC 8 link, reorder the line
or start a new output line. Rich markup (``[link=…]``) is not this module's concern: the
terminal renderers pass data as ``rich.text.Text``, which is never parsed as markup.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re

# JSON text outside strings is ASCII; within strings json.dumps already escapes C0 controls.
# What is left to check is every other non-ASCII character (and DEL).
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e\n]")


def _escape_char(c: str) -> str:
    return c if c.isprintable() else repr(c)[1:-1]


def printable(text: object) -> str:
    """``text`` on one line, every character that is not printable shown as its escape."""
    s = str(text)
    if s.isprintable():  # the common case, at C speed
        return s
    return "".join(_escape_char(c) for c in s)


SAID_CHARS = 200
QUOTED_CHARS = 64
"""How much of an id or a name from outside an error or a log line quotes: enough to find it,
too little to carry a record (a text field holds up to 200 characters)."""


def said(text: object, limit: int = SAID_CHARS) -> str:
    """Free text from outside (an exception a broker or a peer's answer raised) as a log line
    or a refusal reason may carry it: escaped as :func:`printable` escapes it, and at most
    ``limit`` characters of it, ``...`` saying that there was more. Unbounded, one log line
    could hold a whole roster."""
    s = printable(text)
    return s if len(s) <= limit else s[:limit] + "..."


def quoted(text: object, limit: int = QUOTED_CHARS) -> str:
    """``text`` (an id, a key, a name: never a record's value) as an error or a log line may
    name it: in quotes, escaped and bounded as :func:`said` makes it."""
    return f"'{said(text, limit)}'"


def printable_lines(text: object) -> str:
    """As :func:`printable`, but line breaks stay line breaks (for multi-line messages)."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def _json_escape(match: re.Match[str]) -> str:
    c = match.group()
    if c.isprintable():
        return c
    cp = ord(c)
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    cp -= 0x10000  # RFC 8259 §7: a character outside the BMP as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def json_text(value: object, *, indent: int | None = 2) -> str:
    """``value`` as JSON that is safe on a terminal: the same data as ``json.dumps``
    (readable names stay readable), with every character that is not printable written as a
    ``\\u`` escape. Such characters can only occur inside JSON strings, where the escape means
    exactly the same character."""
    return _NOT_PLAIN_ASCII.sub(_json_escape, json.dumps(value, indent=indent,
                                                         ensure_ascii=False))


__all__ = ["QUOTED_CHARS", "SAID_CHARS", "json_text", "printable", "printable_lines", "quoted",
           "said"]
