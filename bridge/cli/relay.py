"""``bridge relay``: the relay through the mediator's NATS JetStream broker (PROTOCOL.md,
"Relay binding"). One command group for both sides, each subcommand in the module that its
side owns, loaded when it runs:

- the mediator's: ``init``, ``add-party``, ``add-witness``, ``run``, ``status``
  (bridge/cli/relay_mediator.py);
- a party's: added to ``RELAY_COMMANDS`` below, one line each.
"""

from __future__ import annotations

import click

from bridge.cli.main import LazyGroup

RELAY_COMMANDS: dict[str, str] = {
    "add-party": "relay_mediator:add_party",
    "add-witness": "relay_mediator:add_witness",
    "init": "relay_mediator:relay_init",
    "join": "relay_party:relay_join",
    "run": "relay_mediator:relay_run",
    "status": "relay_mediator:relay_status",
}


class RelayGroup(LazyGroup):
    lazy = RELAY_COMMANDS


@click.group("relay", cls=RelayGroup)
def relay_group() -> None:
    """The relay: Bridge through the mediator's message broker (NATS JetStream).

    The mediator runs it (init, add-party, run, status) in a home of its own and hands each
    party its credential file and the URL; neither party then listens on any port."""


__all__ = ["RELAY_COMMANDS", "RelayGroup", "relay_group"]
