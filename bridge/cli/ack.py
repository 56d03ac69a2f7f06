"""``bridge ack``: acknowledge items of a received document, each with one of the statuses of
``bridge.core.documents.ACK_STATUSES``: all of them at once, item by item, or from a file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_option
from bridge.cli.output import echo_json
from bridge.client import ApiError, BridgeClient
from bridge.core.documents import ACK_STATUSES
from bridge.core.errors import BridgeError
from bridge.core.printable import printable, quoted
from bridge.records.importers import ImportErrors, RowError, import_acks_rows

_ACK_META = "bridge.ack.groups"
_FOLLOWERS = ("--reason", "--evidence")  # options that belong to the --item they follow


@dataclass(frozen=True)
class ItemOptions:
    """``--item ID STATUS`` groups in the order given, each with the ``--reason`` and
    ``--evidence`` that follow it; ``default`` holds those given before any ``--item``."""

    groups: tuple[dict[str, str], ...] = ()
    default: dict[str, str] = field(default_factory=dict)


def _set_follower(target: dict[str, str], name: str, value: str, *, where: str) -> None:
    key = name[2:]
    if key in target:
        raise ValueError(f"{name} given twice for {where}")
    target[key] = value


def pair_item_options(args: Sequence[str]) -> ItemOptions:
    """Read ``--item``, ``--reason`` and ``--evidence`` (as ``--opt V`` or ``--opt=V``) in the
    order given, up to ``--``. Click keeps each option's values but not how different options
    interleave, so this is read from the raw arguments before click parses them. A value that
    is missing is left for click to report. ValueError: a follower given twice for one item."""
    groups: list[dict[str, str]] = []
    default: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        name, eq, val = args[i].partition("=")
        if name not in ("--item", *_FOLLOWERS):
            i += 1
            continue
        need = (0 if eq else 1) + (1 if name == "--item" else 0)
        if i + need >= len(args):
            break  # click reports the missing value
        values = [val, *args[i + 1:i + 1 + need]] if eq else list(args[i + 1:i + 1 + need])
        if name == "--item":
            groups.append({"id": values[0], "status": values[1]})
        elif groups:
            _set_follower(groups[-1], name, values[0], where=f"item {quoted(groups[-1]['id'])}")
        else:
            _set_follower(default, name, values[0], where="the default")
        i += need + 1
    return ItemOptions(groups=tuple(groups), default=default)


class _AckCommand(click.Command):
    """``--reason`` and ``--evidence`` belong to the ``--item`` they follow; before any
    ``--item`` (or with ``--all``) they are the default (see :func:`pair_item_options`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            ctx.meta[_ACK_META] = pair_item_options(args)
        except ValueError as exc:
            raise click.UsageError(str(exc), ctx=ctx) from exc
        return super().parse_args(ctx, args)


def _status_value(text: str, param: str) -> str:
    value = text.strip().upper()
    if value not in ACK_STATUSES:
        raise click.BadParameter("not an acknowledgement status; one of: "
                                 f"{', '.join(ACK_STATUSES)}", param_hint=param)
    return value


def _ack_file(client: BridgeClient, doc: str, ack_file: str, reasons: tuple[str, ...],
              evidences: tuple[str, ...], as_json: bool) -> dict[str, Any]:
    if reasons or evidences:
        raise click.UsageError("with --file, reasons and evidence go in its columns")
    with reporting(as_json=as_json):
        items, rows = import_acks_rows(ack_file)
        try:
            return client.acknowledge(doc, items=items)
        except ApiError as err:
            raise _by_row(err, ack_file, rows) from err


_ITEM_FIELD = re.compile(r"items\[(\d+)\]\.?(.*)\Z")


def _by_row(err: ApiError, path: str, rows: list[int]) -> BridgeError:
    """What the daemon found wrong with ``items[n]``, every one, told by the row of the sheet
    it came from (as the importers tell a bad row); any other error as it is."""
    found = []
    for where, message in err.problems or ((err.field, err.detail),):
        match = _ITEM_FIELD.match(where or "")
        if match is None or int(match.group(1)) >= len(rows):
            return err
        found.append(RowError(row=rows[int(match.group(1))], field=match.group(2) or None,
                              message=message))
    return ImportErrors(path, found, bad_rows=len({e.row for e in found}))


def _ack_all(client: BridgeClient, doc: str, all_status: str, including: tuple[str, ...],
             reasons: tuple[str, ...], evidences: tuple[str, ...],
             as_json: bool) -> dict[str, Any]:
    if evidences:
        raise click.UsageError("--evidence goes with --item; --all takes only a --reason")
    if len(reasons) > 1:
        raise click.UsageError("--all takes one --reason")
    status_all = _status_value(all_status, "--all")
    with reporting(as_json=as_json):
        named = sorted({_status_value(st, "--including") for st in including})
        reason = reasons[0] if reasons else None
        if named:
            return client.acknowledge(doc, all=status_all, reason=reason, including=named)
        return client.acknowledge(doc, all=status_all, reason=reason)


def _item_entries(found: ItemOptions) -> list[dict[str, str]]:
    """One acknowledgement per ``--item``, with its own reason and evidence or the default."""
    seen: set[str] = set()
    items: list[dict[str, str]] = []
    for g in found.groups:
        if g["id"] in seen:
            raise click.UsageError(f"item {quoted(g['id'])} is given twice")
        seen.add(g["id"])
        entry = {"id": g["id"], "status": _status_value(g["status"], "--item")}
        for key in ("reason", "evidence"):
            value = g.get(key, found.default.get(key))
            if value is not None:
                entry[key] = value
        items.append(entry)
    return items


def _ack_summary(doc: str, answer: Mapping[str, Any]) -> str:
    """What an acknowledgement changed, from what: never a silent bulk overwrite."""
    if not answer.get("ack_id"):
        return (f"Nothing to acknowledge in {doc}: every item named already says this "
                "(a bulk --all leaves items that have a status alone; --including STATUS "
                "changes those).")
    changed = answer.get("changed") or {}
    parts = [f"{n} {'not yet acknowledged' if prev == 'unacknowledged' else 'from ' + prev}"
             for prev, n in sorted(changed.items())]
    detail = f": {', '.join(parts)}" if parts else ""
    return (f"Acknowledged {answer.get('items')} item(s) of {doc}{detail} "
            f"(acknowledgement {answer.get('ack_id')}).")


def _check_choice(all_status: str | None, item_specs: tuple[tuple[str, str], ...],
                  ack_file: str | None, including: tuple[str, ...]) -> None:
    if sum((all_status is not None, bool(item_specs), ack_file is not None)) != 1:
        raise click.UsageError("give either --all STATUS, one or more --item ID STATUS, "
                               "or --file ACKS.csv")
    if including and all_status is None:
        raise click.UsageError("--including goes with --all")


@click.command(cls=_AckCommand)
@click.argument("doc")
@click.option("--all", "all_status", metavar="STATUS",
              help="Give every item of DOC that has no status yet this status.")
@click.option("--including", "including", multiple=True, metavar="STATUS",
              help="With --all: also change the items that now have this status "
                   "(repeatable).")
@click.option("--item", "item_specs", nargs=2, multiple=True, metavar="ID STATUS",
              help="Give item ID this status (repeatable).")
@click.option("--reason", "reasons", multiple=True, metavar="TEXT",
              help="Reason for the --item it follows (before any --item: for all of them; "
                   "with --all: for all).")
@click.option("--evidence", "evidences", multiple=True, metavar="REF",
              help="Evidence reference for the --item it follows (before any --item: for all).")
@click.option("--file", "ack_file", type=click.Path(dir_okay=False), metavar="ACKS.csv",
              help="A CSV or XLSX file with the columns id,status,reason[,evidence]: one "
                   "row per item.")
@json_option
@click.pass_context
def ack(ctx: click.Context, doc: str, all_status: str | None, including: tuple[str, ...],
        item_specs: tuple[tuple[str, str], ...], reasons: tuple[str, ...],
        evidences: tuple[str, ...], ack_file: str | None, as_json: bool) -> None:
    """Acknowledge items of the received document DOC.

    \b
    Statuses: RECEIVED, NOT_RECEIVED, RECEIVED_UNDECLARED, PENDING_IDENTIFICATION,
    IDENTITY_CONFIRMED, IDENTITY_MISMATCH, NOT_OWN_NATIONAL, COMMINGLED, ALREADY_EXCHANGED,
    CATEGORY_INELIGIBLE, DECLINED_REPATRIATION, WITHHELD, POSTPONED, DISPUTED.
    \b
    Examples:
      bridge ack D-7 --all RECEIVED       (the items not yet acknowledged)
      bridge ack D-7 --all RECEIVED --including DISPUTED
      bridge ack D-7 --item p-1 RECEIVED --item p-2 WITHHELD --reason "medical hold"
      bridge ack D-7 --file acks.csv      (columns id,status,reason[,evidence])
    """
    _check_choice(all_status, item_specs, ack_file, including)
    obj: Ctx = ctx.obj
    client = obj.client()
    if ack_file is not None:
        answer = _ack_file(client, doc, ack_file, reasons, evidences, as_json)
    elif all_status is not None:
        answer = _ack_all(client, doc, all_status, including, reasons, evidences, as_json)
    else:
        found: ItemOptions = ctx.meta.get(_ACK_META, ItemOptions())
        if len(found.groups) != len(item_specs):  # pragma: no cover - the pre-scan missed one
            raise click.UsageError("could not pair --reason/--evidence with their --item")
        items = _item_entries(found)
        with reporting(as_json=as_json):
            answer = client.acknowledge(doc, items=items)
    if as_json:
        echo_json(answer)
        return
    click.echo(printable(_ack_summary(doc, answer)))


__all__ = ["ItemOptions", "ack", "pair_item_options"]
