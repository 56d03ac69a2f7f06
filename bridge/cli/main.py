"""The ``bridge`` command: one click group, and the command groups registered on it, one per
file of this package. Each command parses, calls and prints; failures end through
:mod:`bridge.cli.exits`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.home.folder import default_home

NOT_IPROUTE2 = (
    "Is this Bridge? Linux's iproute2 has a command named bridge too: if `bridge --home DIR` "
    "answers 'Option \"-home\" is unknown', that one ran. Run `. .venv/bin/activate` in the "
    "Bridge checkout (or call .venv/bin/bridge); `type bridge` shows which one the shell finds, "
    "and `bridge --version` names Bridge.")


# Each command's module, imported only when that command runs (or --help lists them all): a
# `bridge send` does not pay for the reports' renderers, the importers or the daemon, and every
# `bridge` process starts the faster for it.
COMMANDS: dict[str, str] = {
    "ack": "ack:ack", "audit": "audit:audit_group", "carry": "carry:carry",
    "daemon": "daemon:daemon",
    "demo": "demo:demo", "doctor": "doctor:doctor", "events": "events:events",
    "inbox": "status:inbox", "init": "init:init", "items": "items:items_cmd",
    "keys": "keys:keys", "peer": "peer:peer", "receipt": "receipt:receipt",
    "reconcile": "reconcile:reconcile", "relay": "relay:relay_group", "send": "send:send",
    "status": "status:status", "tls": "tls:tls_group", "verify": "verify:verify",
    "witness": "witness:witness", "backup": "backup:backup", "restore": "backup:restore",
}


class LazyGroup(click.Group):
    """A group whose commands are loaded from ``lazy`` (``COMMANDS`` for ``bridge``; a
    command group of its own, such as ``bridge relay``, names its own map) when first asked
    for."""

    lazy: dict[str, str] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(f"bridge.cli.{module}"), attr)
            if not isinstance(command, click.Command) or command.name != cmd_name:
                raise LookupError(f"bridge.cli.{module}.{attr} is not the command {cmd_name}")
            self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=NOT_IPROUTE2)
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


__all__ = ["COMMANDS", "LazyGroup", "main"]
