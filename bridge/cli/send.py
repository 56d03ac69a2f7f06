"""``bridge send``: read a roster or manifest from a file (CSV, XLSX or JSON) and submit it to
the daemon, which checks every item, commits it before it answers and then delivers it.

A table's rows are read and converted here and checked once, by the daemon: its check of a
roster of a known category, or of manifest items that declare a kind, is the very check the
import makes (``categories.check_records``), and the daemon is the boundary that must make it.
When it refuses an item, or cannot be reached, the file is checked here as well, so every bad
row is still listed by its row, column and field; a refused document is never committed.

A CSV roster is sent as it is read (``importers.streamed``): the daemon checks the first rows
while the last are still being read here, and the file is never held whole. A row that cannot
be sent as it is (a cell that does not convert) cuts the stream off, nothing is committed, and
the file is read whole as any other, which lists its bad rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_option
from bridge.cli.output import echo_json
from bridge.client import ApiError, BridgeClient, DaemonUnavailable
from bridge.core.errors import InputError
from bridge.core.printable import printable
from bridge.records.categories import CATEGORIES
from bridge.records.importers import (
    DOCUMENT_TYPES,
    ImportErrors,
    RowError,
    Submission,
    file_format,
    import_document,
    load_json_value,
)
from bridge.records.importers.streamed import NotStreamed, RosterStream, roster_stream


def _meta_file(meta_file: str) -> dict[str, Any]:
    try:  # an import like any other: the same size, container and depth limits
        loaded = load_json_value(meta_file)
    except InputError as exc:
        raise click.BadParameter(exc.detail, param_hint="--meta") from exc
    if not isinstance(loaded, dict):
        raise click.BadParameter(f"{meta_file} must hold a JSON object", param_hint="--meta")
    return loaded


def _merged_meta(own: Mapping[str, Any] | None, meta_file: str | None,
                 assignments: Sequence[str]) -> dict[str, Any] | None:
    """The file's own meta, then ``--meta FILE``, then each ``--set KEY=VALUE``: later wins.
    The daemon checks the result as it checks any meta (no floats, a valid deadline)."""
    if own is None and meta_file is None and not assignments:
        return None
    meta: dict[str, Any] = dict(own or {})
    if meta_file is not None:
        meta.update(_meta_file(meta_file))
    for n, text in enumerate(assignments, start=1):
        key, eq, value = text.partition("=")
        if not eq or not key.strip():
            # Not quoted: the text may be a record's value typed without its key.
            raise click.BadParameter(f"--set number {n} is not KEY=VALUE (a key, '=', then "
                                     "the value)", param_hint="--set")
        try:
            meta[key.strip()] = json.loads(value)
        except ValueError:
            meta[key.strip()] = value
    return meta


def _submit(client: BridgeClient, doc_type: str, to: str, items: Iterable[Mapping[str, Any]],
            meta: dict[str, Any] | None, doc_id: str | None) -> dict[str, Any]:
    """Submit; a daemon that was reached and then stopped answering may have committed it."""
    try:
        return client.submit_document(doc_type, to, items, meta=meta, id=doc_id)
    except DaemonUnavailable as err:
        if err.reached:
            retry = (f"re-run with the same --id {doc_id}" if doc_id else
                     "check with: bridge status --direction out")
            raise DaemonUnavailable(f"{err}. The document may or may not have been "
                                    f"committed; {retry}", reached=True) from err
        raise


def _daemon_checks_it(doc_type: str, own_meta: Mapping[str, Any] | None,
                      items: Sequence[Mapping[str, Any]], meta: Mapping[str, Any] | None) -> bool:
    """Will the daemon check every item with the schema the import would have? A roster: by
    its ``meta.category``, which ``--meta`` or ``--set`` may have changed; a manifest: only
    the items that declare a ``kind`` (``categories.check_submission``)."""
    if doc_type == "roster":
        return (meta or {}).get("category") == (own_meta or {}).get("category")
    return all("kind" in item for item in items)


def _refused_rows(file: str, doc_type: str, category: str | None,
                  submission: Submission | RosterStream, err: ApiError) -> ImportErrors:
    """The daemon refused item ``items[n]``: every bad row, as the import lists them (the
    file checked here), or else the daemon's reason, named by the item's row."""
    import_document(file, doc_type=doc_type, category=category)  # raises ImportErrors if bad
    n_text, _, rest = (err.field or "")[len("items["):].partition("]")
    n = int(n_text) if n_text.isdigit() else -1
    if isinstance(submission, RosterStream):
        row = submission.row_of(n)
    else:
        row = submission.rows[n] if 0 <= n < len(submission.rows) else None
    name = rest.removeprefix(".") or None
    return ImportErrors(file, [RowError(row=row, field=name, message=err.detail)], bad_rows=1)


def _submit_rows(client: BridgeClient, doc_type: str, to: str, file: str,
                 category: str | None, submission: Submission | RosterStream,
                 meta: dict[str, Any] | None, doc_id: str | None) -> dict[str, Any]:
    """Submit; a table whose rows the daemon refuses, or that finds no daemon, is checked
    here too, so that the answer lists every bad row (nothing was committed)."""
    checked = isinstance(submission, Submission) and submission.checked
    items = submission.items if isinstance(submission, Submission) else submission
    try:
        return _submit(client, doc_type, to, items, meta, doc_id)
    except ApiError as err:
        if checked or not (err.field or "").startswith("items["):
            raise
        raise _refused_rows(file, doc_type, category, submission, err) from err
    except DaemonUnavailable as err:
        if not (checked or err.reached):
            import_document(file, doc_type=doc_type, category=category)  # a bad file says so
        raise


def _streamed(client: BridgeClient, file: str, to: str, category: str,
              meta_file: str | None, meta_set: Sequence[str], doc_id: str | None
              ) -> tuple[dict[str, Any], int] | None:
    """A CSV roster sent as it is read (``streamed``), if it can be: its answer and count; None
    when it is to be read whole instead (a bad header, meta that changes its category, a row
    that cannot be sent as it is: nothing was committed)."""
    stream = roster_stream(file, category)
    if stream is None:
        return None
    meta = _merged_meta({"category": category}, meta_file, meta_set)
    if not _daemon_checks_it("roster", {"category": category}, [], meta):
        return None
    try:
        return _submit_rows(client, "roster", to, file, category, stream, meta, doc_id), \
            len(stream)
    except NotStreamed:
        return None


def _read_whole(client: BridgeClient, doc_type: str, file: str, to: str, category: str | None,
                meta_file: str | None, meta_set: Sequence[str], doc_id: str | None
                ) -> tuple[dict[str, Any], int]:
    """The file read whole, then submitted. A table's rows are checked by the daemon, unless
    it would check them otherwise."""
    submission = import_document(file, doc_type=doc_type, category=category, check=False)
    meta = _merged_meta(submission.meta, meta_file, meta_set)
    if not (submission.checked
            or _daemon_checks_it(doc_type, submission.meta, submission.items, meta)):
        submission = import_document(file, doc_type=doc_type, category=category)
    answer = _submit_rows(client, doc_type, to, file, category, submission, meta, doc_id)
    return answer, len(submission.items)


def _print_committed(doc_type: str, to: str, n_items: int, answer: Mapping[str, Any]) -> None:
    doc_id_sent = printable(answer.get("id", ""))
    click.echo(doc_id_sent)
    if answer.get("existing"):
        click.echo(f"Already committed: {doc_type} {doc_id_sent} for "
                   f"{printable(answer.get('to', to))} with the same content "
                   f"({printable(answer.get('items'))} items); nothing new was sent. Follow it "
                   f"with: bridge status {doc_id_sent} --watch", err=True)
        return
    click.echo(f"Committed {doc_type} {doc_id_sent} for {printable(answer.get('to', to))}: "
               f"{printable(answer.get('items', n_items))} items. Follow it with: "
               f"bridge status {doc_id_sent} --watch", err=True)


@click.command()
@click.argument("doc_type", metavar="roster|manifest", type=click.Choice(DOCUMENT_TYPES))
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--to", "to", required=True, help="The peer to send it to.")
@click.option("--category", type=click.Choice(CATEGORIES), help="The roster's category "
              "(required for a CSV or XLSX roster); every row is checked against its schema.")
@click.option("--id", "doc_id", help="Document id (default: the daemon picks one). Giving one "
              "makes a retry safe.")
@click.option("--meta", "meta_file", type=click.Path(dir_okay=False), metavar="META.json",
              help="The document's meta (a JSON object: batch, agreement, declared counts, "
                   "ack_deadline, ...), for a CSV or XLSX file that cannot carry it.")
@click.option("--set", "meta_set", multiple=True, metavar="KEY=VALUE",
              help="One meta field (repeatable; after --meta and the file's own meta). VALUE "
                   "is read as JSON when it is JSON (7, {\"remains\": 1248}), else as text.")
@json_option
@click.pass_obj
def send(obj: Ctx, doc_type: str, file: str, to: str, category: str | None,
         doc_id: str | None, meta_file: str | None, meta_set: tuple[str, ...],
         as_json: bool) -> None:
    """Submit FILE (.csv, .xlsx or .json) as a roster or manifest for the peer --to.

    A CSV or XLSX file has a header row naming the fields; a JSON file is {"meta": {...},
    "items": [...]} or a bare list of items, each with an "id". Every row is checked: if any
    is bad, all bad rows are listed and nothing is committed or sent. The daemon answers once
    the document is durably committed; it then delivers it.
    """
    if category is not None and doc_type != "roster":
        raise click.UsageError("--category is for rosters (manifest items name their own)")
    with reporting(as_json=as_json):
        if doc_type == "roster" and category is None and file_format(file) != "json":
            raise click.UsageError(f"a roster from {file} needs --category "
                                   f"{'|'.join(CATEGORIES)}")
        streamed = None
        if category is not None and file_format(file) == "csv":
            streamed = _streamed(obj.client(), file, to, category, meta_file, meta_set, doc_id)
        if streamed is None:
            streamed = _read_whole(obj.client(), doc_type, file, to, category, meta_file,
                                   meta_set, doc_id)
    answer, count = streamed
    if as_json:
        echo_json(answer)
        return
    _print_committed(doc_type, to, count, answer)


__all__ = ["send"]
