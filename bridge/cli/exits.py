"""How a ``bridge`` command ends when something fails: one table from the error family
(``bridge/core/errors.py``, and the two errors of :mod:`bridge.client`) to an exit code and the
way its message is shown, and one printer. Every command reports through :func:`reporting` (or
:func:`fail`), so that the same error always ends the same way.

Exit codes: 0 ok; 1 a failure reported by the daemon, or invalid input; 2 bad usage (click's
own, and the commands that only read this home, for whom every failure is a request that cannot
be met); 3 the daemon is not running or stopped answering; 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NoReturn

import click

from bridge.client import ApiError, DaemonUnavailable
from bridge.core.errors import BridgeError
from bridge.core.printable import json_text, printable, printable_lines
from bridge.records.importers.problems import ImportErrors


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


@dataclass(frozen=True, kw_only=True)
class ExitRule:
    """How an error of class ``error`` (or a subclass) ends a command. ``one_line``: the
    message may quote what a peer sent (the daemon's answers name ids, reasons), so it is shown
    as one escaped line; local messages may span lines (a list of bad rows), each escaped."""

    error: type[BridgeError]
    exit: Exit
    one_line: bool = False


# Most specific first: the first rule whose class the error is an instance of applies.
EXIT_RULES: tuple[ExitRule, ...] = (
    ExitRule(error=DaemonUnavailable, exit=Exit.UNAVAILABLE),
    ExitRule(error=ApiError, exit=Exit.FAILED, one_line=True),
    ExitRule(error=BridgeError, exit=Exit.FAILED),
)

# What to do next, for the daemon's refusals that have an obvious next step (by ApiError code).
HINTS = {
    "ambiguous": "this id exists both as sent and as received; add --direction in|out",
    "unknown_peer": "pin the peer first: bridge peer add PUBFILE --url URL --fingerprint FP",
    "duplicate_document": "a document with this id was already submitted; see: bridge status ID",
    "not_inbound": "only received documents (bridge inbox) can be acknowledged",
    "queue_full": "nothing was stored: the peer's queue is full (the link is slow or the peer "
                  "is down); try again later",
}


def rule_for(err: BridgeError) -> ExitRule:
    return next(r for r in EXIT_RULES if isinstance(err, r.error))


def exit_code(err: BridgeError, failed: Exit = Exit.FAILED) -> Exit:
    """The exit code of ``err``; ``failed`` stands for a plain failure (``Exit.FAILED``) in a
    command for which every failure is a usage error."""
    code = rule_for(err).exit
    return failed if code is Exit.FAILED else code


def _error_json(err: BridgeError) -> dict[str, Any]:
    """The ``{"error": …}`` object a ``--json`` command prints on standard output."""
    problems = getattr(err, "problems", ())
    body: dict[str, Any] = {"code": err.code, "message": getattr(err, "detail", str(err)),
                            "field": getattr(err, "field", None)}
    if isinstance(err, ApiError):
        body["status"] = err.status
    if problems:
        body["problems"] = [{"field": f, "message": m} for f, m in problems]
    if isinstance(err, ImportErrors):
        body["bad_rows"] = err.bad_rows
        body["errors"] = [e.to_json() for e in err.errors]
    return {"error": body}


def show_error(err: BridgeError, *, as_json: bool = False) -> None:
    """``error: …`` on standard error, every problem when there are several (so that all can
    be fixed in one go), a hint when there is an obvious next step; with ``as_json`` also the
    error object on standard output."""
    rule = rule_for(err)
    shown = printable(err) if rule.one_line else printable_lines(err)
    click.echo(f"error: {shown}", err=True)
    problems = getattr(err, "problems", ())
    if len(problems) > 1:
        for field, text in problems:
            click.echo(printable(f"  {field}: {text}" if field else f"  {text}"), err=True)
    hint = HINTS.get(err.code) if isinstance(err, ApiError) else None
    if hint:
        click.echo(f"hint: {hint}", err=True)
    if as_json:
        click.echo(json_text(_error_json(err)))


def fail(err: BridgeError, *, as_json: bool = False, failed: Exit = Exit.FAILED) -> NoReturn:
    show_error(err, as_json=as_json)
    sys.exit(int(exit_code(err, failed)))


@contextmanager
def reporting(*, as_json: bool = False, failed: Exit = Exit.FAILED) -> Iterator[None]:
    """Ends the command as :data:`EXIT_RULES` says when a Bridge error is raised inside."""
    try:
        yield
    except BridgeError as err:
        fail(err, as_json=as_json, failed=failed)


__all__ = ["EXIT_RULES", "HINTS", "Exit", "ExitRule", "exit_code", "fail", "reporting",
           "rule_for", "show_error"]
