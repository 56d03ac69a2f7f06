"""``bridge.core.printable``: what a peer wrote is shown, never obeyed (PROTOCOL §10, "Output")."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core.printable import json_text, printable, printable_lines
from bridge.reports.render.text import safe_text


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2J", "\\x1b[2J"),                      # ESC: clear the screen
    ("\x1b]8;;https://x/\x07y", "\\x1b]8;;https://x/\\x07y"),  # OSC 8 link, BEL
    ("\x9b31m", "\\x9b31m"),                       # C1 CSI
    ("a\u202eb\u2066c", "a\\u202eb\\u2066c"),      # bidi override and isolate
    ("line\nOK: forged", "line\\nOK: forged"),     # no extra output line
    ("tab\there\r", "tab\\there\\r"),
    ("\x7f\u2028\u200b\ufeff", "\\x7f\\u2028\\u200b\\ufeff"),
    ("\ud800", "\\ud800"),                         # a lone surrogate cannot even be encoded
    ("\U000e0041", "\\U000e0041"),                 # a tag character
    ("Пётр Іваненко, O'Brien [sic] \\x1b", "Пётр Іваненко, O'Brien [sic] \\x1b"),
])
def test_printable_shows_controls_c1_and_bidi_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # already visible text stays as it is


def test_printable_lines_keeps_line_breaks_only() -> None:
    assert printable_lines("bad rows:\n  row 2: \x1b[2J") == "bad rows:\n  row 2: \\x1b[2J"


def test_safe_text_is_never_markup() -> None:
    text = safe_text("[link=https://evil/]x[/link] [black on black]h[/] \x1b[2J")
    assert text.plain == "[link=https://evil/]x[/link] [black on black]h[/] \\x1b[2J"
    assert text.spans == []


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12))
def test_json_text_is_the_same_data_with_nothing_unprintable(value: object) -> None:
    out = json_text(value)
    assert json.loads(out) == value
    assert all(c.isprintable() or c == "\n" for c in out)
    assert json.loads(json_text(value, indent=None)) == value


def test_long_item_lists_printed_without_rich_are_escaped_too(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Beyond RICH_TABLE_MAX_ROWS, ``bridge items`` prints aligned plain text: same escaping."""
    from bridge.cli.output import plain_table

    plain_table(("ID", "REASON"), [("P-1", "\x1b[2J\u202eevil"), ("P-2", "ok")])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J\\u202eevil" in out
    assert out.splitlines()[2].startswith("P-2  ")  # widths measured on what is shown
