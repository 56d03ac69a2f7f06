"""``bridge audit split-views``: the split views this bridge caught (PROTOCOL.md §13.7), each with
the two checkpoints of the peer's log that contradict each other, for whoever must judge it.

Reads the store directly and only reads it (the daemon may be running or not). Each checkpoint
is a C2SP signed note signed by the peer's key: anyone holding the peer's identity file checks
it offline (``-o DIR`` writes them out as files, mode 0600).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.output import echo_json
from bridge.core.crypto.identity import iso_time
from bridge.core.errors import DecodeError
from bridge.core.notes.checkpoint import parse_checkpoint_text
from bridge.core.notes.note import parse_note
from bridge.core.printable import printable
from bridge.home.files import write_file
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.peer_log import PeerLog


def _read(db_path: Path) -> list[dict[str, Any]]:
    with reporting(failed=Exit.USAGE):
        conn = audit_db.connect(db_path)
        with contextlib.closing(conn), audit_db.snapshot(conn):
            try:
                return PeerLog(conn).peer_log_conflicts()
            except sqlite3.OperationalError:  # a store not yet upgraded: none caught
                return []


def _head(note: object) -> str:
    """``size N, root R`` of a kept note (the peer's text, escaped), or why it is not one."""
    if not isinstance(note, bytes):
        return "none kept"
    try:
        cp = parse_checkpoint_text(parse_note(note).text)
    except DecodeError as exc:
        return f"unreadable ({exc.message})"
    return f"size {cp.size}, root {cp.root.hex()}"


def _as_json(view: dict[str, Any]) -> dict[str, Any]:
    def text(note: object) -> str | None:
        return note.decode("utf-8", "replace") if isinstance(note, bytes) else None

    return {"peer": view["peer"], "origin": view["origin"], "reason": view["reason"],
            "detail": view["detail"], "at": iso_time(int(view["at"])),
            "kept": text(view["stored"]), "offered": text(view["offered"])}


@click.command("split-views")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON, with both notes.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write each pair of checkpoints to this folder (split-view-N-kept.note "
                   "and split-view-N-offered.note, mode 0600).")
@click.pass_obj
def split_views(obj: Ctx, as_json: bool, output: Path | None) -> None:
    """The split views caught: a peer that showed this bridge a log not extending the one it
    showed before, with both of its signed checkpoints (PROTOCOL.md §13.7).

    Exit status: 0 when none was caught, 1 when one was, 2 for a usage error.
    """
    views = _read(obj.home.db_path)
    if output is not None:
        with reporting(failed=Exit.USAGE):
            output.mkdir(mode=0o700, parents=True, exist_ok=True)
            for n, view in enumerate(views, start=1):
                for side, key in (("kept", "stored"), ("offered", "offered")):
                    if isinstance(view[key], bytes):
                        write_file(output / f"split-view-{n}-{side}.note", view[key])
    if as_json:
        echo_json({"split_views": [_as_json(v) for v in views]})
    elif not views:
        click.echo("no split view caught")
    for n, view in enumerate(views if not as_json else [], start=1):
        click.echo(printable(f"{n}. {iso_time(int(view['at']))} {view['peer']} "
                             f"[{view['reason']}]: {view['detail']}"))
        click.echo(printable(f"   kept:    {_head(view['stored'])}"))
        click.echo(printable(f"   offered: {_head(view['offered'])}"))
    raise SystemExit(int(Exit.FAILED if views else Exit.OK))
