"""Sizes that keep the code readable: no module of ``bridge/`` over 500 lines, no function over
60 lines, except those named below with the reason.

A function's length runs from its ``def`` line to its last line, docstring and comments
included (decorators not). Nested functions count inside the function that holds them, and are
measured on their own too. The allow-lists must name only what is still too long: an entry that
no longer is (split, or gone) fails the last test until it is taken off, so the lists only ever
shrink.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "bridge"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# What may stay too long, with the reason. Empty: every module and function of the package
# is within the limits. An entry added here must say why in a comment at the code too.
KNOWN_LONG_MODULES: dict[str, str] = {}
KNOWN_LONG_FUNCTIONS: dict[str, str] = {}


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function in ``source`` longer than ``limit`` lines."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                assert child.end_lineno is not None
                lines = child.end_lineno - child.lineno + 1
                if lines > limit:
                    yield name, lines
                yield from visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, prefix + child.name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(ast.parse(source), "")


def modules() -> list[tuple[str, str]]:
    """(path inside bridge/, text) of every module of the package."""
    return [(path.relative_to(PACKAGE_DIR).as_posix(), path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE_DIR.rglob("*.py"))]


def too_long() -> tuple[dict[str, int], dict[str, int]]:
    """Modules and functions over the limits, allowed or not, with their lengths."""
    long_modules: dict[str, int] = {}
    long_funcs: dict[str, int] = {}
    for name, text in modules():
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            long_modules[name] = lines
        for func, length in long_functions(text):
            long_funcs[f"{name}::{func}"] = length
    return long_modules, long_funcs


def test_no_module_is_longer_than_500_lines() -> None:
    long_modules, _ = too_long()
    unexplained = {m: n for m, n in long_modules.items() if m not in KNOWN_LONG_MODULES}
    assert not unexplained, (f"modules over {MAX_MODULE_LINES} lines (split them into modules "
                             f"with names that explain themselves): {unexplained}")


def test_no_function_is_longer_than_60_lines() -> None:
    _, long_funcs = too_long()
    unexplained = {f: n for f, n in long_funcs.items() if f not in KNOWN_LONG_FUNCTIONS}
    assert not unexplained, (f"functions over {MAX_FUNCTION_LINES} lines (split them into "
                             f"named steps): {unexplained}")


def test_the_allow_lists_name_only_what_is_still_too_long() -> None:
    long_modules, long_funcs = too_long()
    stale = sorted({*KNOWN_LONG_MODULES} - {*long_modules}
                   | {*KNOWN_LONG_FUNCTIONS} - {*long_funcs})
    assert not stale, f"no longer too long (or gone): take them off the allow-lists: {stale}"


def test_a_function_one_line_over_the_limit_is_found_with_its_qualified_name() -> None:
    def function(name: str, lines: int, indent: str = "") -> str:
        body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
        return f"{indent}def {name}() -> None:\n{body}"

    source = (function("fits", MAX_FUNCTION_LINES)
              + function("too_long", MAX_FUNCTION_LINES + 1)
              + "class Holder:\n" + function("method", MAX_FUNCTION_LINES + 1, "    ")
              + "async def outer() -> None:\n"
              + textwrap.indent(function("inner", MAX_FUNCTION_LINES + 1), "    "))
    found = dict(long_functions(source))
    assert found == {"too_long": MAX_FUNCTION_LINES + 1, "Holder.method": MAX_FUNCTION_LINES + 1,
                     "outer": MAX_FUNCTION_LINES + 2, "outer.inner": MAX_FUNCTION_LINES + 1}
