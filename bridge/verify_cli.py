"""``bridge verify``: offline receipt verification (no daemon, no home)."""

from __future__ import annotations

import click


@click.command()
def verify() -> None:
    """Verify receipt bundles offline."""
    raise click.ClickException("not built yet")
