"""``bridge carry``: the offline carrier. Our unanswered envelopes to a peer go into a file a
delegate carries across (``export``); the other side applies it and writes the receipts to
carry back (``import``); importing those receipts here marks the envelopes delivered.

Through the running daemon (it holds the store); PROTOCOL.md §12 is the file format."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.options import force_option, json_option
from bridge.cli.output import echo_json
from bridge.core.carry import FileKind
from bridge.core.crypto.identity import check_party
from bridge.core.errors import InputError
from bridge.core.printable import printable
from bridge.transports.carry.files import Imported, export_file, import_file

# What a record's result means for the exit code: a decision taken (or taken before) is fine;
# anything else left that record where it was.
FINE = frozenset({"accepted", "duplicate", "refused", "delivered", "already"})
# How each result reads in the report.
SAID = {"accepted": "accepted", "duplicate": "taken before (a duplicate)",
        "refused": "taken, its content refused (signed)", "delivered": "delivered",
        "already": "answered before", "not_read": "not read"}


def _peer(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_party(value, field_name="to")
    except InputError as err:
        raise click.BadParameter(err.detail) from err


@click.group()
def carry() -> None:
    """The offline carrier: envelopes in a file, carried across by hand."""


@carry.command("export")
@click.option("--to", "peer", required=True, callback=_peer, help="The peer the file is for.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the carrier file (a new file, mode 0600).")
@force_option
@json_option
@click.pass_obj
def carry_export(obj: Ctx, peer: str, output: Path, force: bool, as_json: bool) -> None:
    """Write every envelope to PEER not yet answered, in order, into one file to carry.

    The envelopes are sealed to the peer and signed by us: whoever carries the file can
    delay, lose or copy it, and see who it is for and how large it is, never what it says."""
    with reporting(as_json=as_json):
        done = export_file(obj.client(), peer, output, force=force)
    if as_json:
        echo_json({"peer": peer, "file": str(done.path) if done.path else None,
                   "envelopes": done.count, "pending": done.pending, "bytes": done.size})
        return
    if done.path is None:
        click.echo(f"Nothing to carry: every envelope to {peer} has been answered; no file "
                   "written.")
        return
    click.echo(f"Wrote {_n(done.count, 'envelope')} to {peer} into {done.path} "
               f"({done.size} bytes).")
    if done.pending > done.count:
        click.echo(f"{done.pending - done.count} more wait: export again once this file's "
                   "receipts are back.")
    click.echo(f"Carry it to {peer}; there: bridge carry import {done.path.name} -o RECEIPTS. "
               "Then import the receipts file here.")


@carry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="For a file of envelopes: where to write the receipts to carry back.")
@force_option
@json_option
@click.pass_obj
def carry_import(obj: Ctx, file: Path, output: Path | None, force: bool,
                 as_json: bool) -> None:
    """Apply a carrier FILE: a peer's envelopes (their receipts go to -o), or the receipts a
    peer gave for ours (they mark our envelopes delivered). Importing a file again changes
    nothing; a damaged record is refused on its own, with its reason."""
    with reporting(as_json=as_json):
        done = import_file(obj.client(), file, receipts=output, force=force)
    fine = _fine(done)
    if as_json:
        report = {k: v for k, v in done.report.items() if k != "receipts"}
        echo_json({**report, "receipts_file": str(done.receipts) if done.receipts else None})
    else:
        _print_import(file, done)
    if not fine:
        raise SystemExit(int(Exit.FAILED))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _fine(done: Imported) -> bool:
    report = done.report
    return bool(report.get("complete")) and all(r.get("result") in FINE for r in done.records)


def _print_import(file: Path, done: Imported) -> None:
    report: dict[str, Any] = done.report
    n = len(done.records)
    what = _n(n, "envelope") if done.kind is FileKind.ENVELOPES else (
        f"{_n(n, 'answer')} to our envelopes")
    click.echo(f"Read {file}: {what} from "
               f"{printable(str(report.get('from')))} to {printable(str(report.get('to')))}.")
    counts = Counter(str(r.get("result")) for r in done.records)
    for result, n in sorted(counts.items()):
        click.echo(f"  {n} {printable(SAID.get(result, result))}")
    for r in done.records:
        if r.get("result") not in FINE:
            reason = r.get("reason") or r.get("result")
            click.echo(printable(f"  envelope {r.get('seq')}: {SAID.get(str(r.get('result')), '')} "
                                 f"({reason}) {r.get('detail') or ''}".rstrip()))
    problem = report.get("problem")
    if isinstance(problem, dict):
        click.echo(printable(f"The file is damaged ({problem.get('reason')}): "
                             f"{problem.get('detail')}. What was read before it stands; "
                             "ask for a fresh export for the rest."))
    if not report.get("new"):
        click.echo("Nothing changed: this file brought nothing new.")
    if done.receipts is not None:
        click.echo(f"Wrote {_n(done.receipt_count, 'receipt')} to {done.receipts}: carry it "
                   "back to "
                   f"{printable(str(report.get('from')))} (bridge carry import "
                   f"{done.receipts.name}).")


__all__ = ["carry"]
