"""``bridge receipt``: export a receipt bundle from the daemon, for ``bridge verify``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import force_option
from bridge.home.files import check_writable, write_file_streamed


@click.command()
@click.argument("doc")
@click.option("--item", "item_id", default=None, help="One item's receipt (default: the whole "
              "document's).")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None,
              help="Whether DOC was sent (out) or received (in), if both exist.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the receipt bundle (a new file, mode 0600).")
@force_option
@click.pass_obj
def receipt(obj: Ctx, doc: str, item_id: str | None, direction: str | None,
            output: Path, force: bool) -> None:
    """Export a receipt bundle that anyone can check offline with `bridge verify`.

    A whole-document receipt discloses every entry (every person on the list): the file is
    created 0600, and an existing file is replaced only with --force."""
    size = 0

    def produce(write: Callable[[bytes], None]) -> None:
        def counted(piece: bytes) -> None:
            nonlocal size
            size += len(piece)
            write(piece)
        obj.client().receipt_to(counted, doc, item=item_id, direction=direction)

    with reporting():
        check_writable(output, replace=force)
        # Written as it arrives: a whole document's receipt need not fit in memory, and one
        # cut short leaves no file.
        write_file_streamed(output, produce, replace=force)
    what = f"item {item_id} of {doc}" if item_id else f"document {doc}"
    click.echo(f"wrote the receipt of {what} to {output} ({size} bytes)")


__all__ = ["receipt"]
