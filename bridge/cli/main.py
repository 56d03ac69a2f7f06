"""The ``bridge`` command: one click group, and the command groups registered on it, one per
file of this package. Each command parses, calls and prints; failures end through
:mod:`bridge.cli.exits`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from bridge.cli.ack import ack
from bridge.cli.audit import audit_group
from bridge.cli.context import Ctx
from bridge.cli.daemon import daemon
from bridge.cli.demo import demo
from bridge.cli.doctor import doctor
from bridge.cli.events import events
from bridge.cli.init import init
from bridge.cli.items import items_cmd
from bridge.cli.keys import keys
from bridge.cli.peer import peer
from bridge.cli.receipt import receipt
from bridge.cli.reconcile import reconcile
from bridge.cli.send import send
from bridge.cli.status import inbox, status
from bridge.cli.tls import tls_group
from bridge.cli.verify import verify
from bridge.home.folder import default_home

NOT_IPROUTE2 = (
    "Is this Bridge? Linux's iproute2 has a command named bridge too: if `bridge --home DIR` "
    "answers 'Option \"-home\" is unknown', that one ran. Run `. .venv/bin/activate` in the "
    "Bridge checkout (or call .venv/bin/bridge); `type bridge` shows which one the shell finds, "
    "and `bridge --version` names Bridge.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=NOT_IPROUTE2)
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="Bridge home folder (default: $BRIDGE_HOME, then ./.bridge).")
@click.version_option(package_name="bridge",
                      message="%(prog)s %(version)s (Bridge: rosters, manifests and per-item "
                              "receipts between two parties)")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """Bridge: secure bilateral exchange of rosters and manifests, with per-item receipts."""
    # Files are written 0600 by bridge.home.files; the umask covers what others create for us
    # (SQLite's journal files, a daemon started from here), so no file is born readable.
    os.umask(0o077)
    ctx.obj = Ctx(home or default_home())


COMMANDS: tuple[click.Command, ...] = (
    init, keys, daemon, peer, send, status, inbox, ack, items_cmd, events, receipt, verify,
    audit_group, reconcile, tls_group, doctor, demo)

for _command in COMMANDS:
    main.add_command(_command)


__all__ = ["COMMANDS", "main"]
