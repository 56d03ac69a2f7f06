"""``bridge events``: the daemon's events as they happen, through its restarts, until Ctrl-C."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.text import Text

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.follow import Grace
from bridge.cli.options import json_option
from bridge.cli.output import console
from bridge.client import BridgeClient, DaemonUnavailable, Event
from bridge.core.printable import json_text, printable

EVENT_STYLES = {"security_alarm": "bold red", "document_refused": "red",
                "acknowledgement_overdue": "yellow", "peer_unreachable": "yellow",
                "peer_back": "green"}


def _print_event(out: Console, ev: Event, as_json: bool) -> None:
    if as_json:
        click.echo(json_text({"id": ev.id, "type": ev.type, "data": ev.data}, indent=None))
    else:
        line = (f"{printable(ev.id or '-'):>6}  {printable(ev.type):<22} "
                f"{json_text(ev.data, indent=None)}")
        out.print(Text(line, style=EVENT_STYLES.get(ev.type, "")), soft_wrap=True)
    sys.stdout.flush()


class _Stream:
    """The event stream, resumed after the last event seen whenever it ends or the daemon
    goes away (for up to the grace period, once it has been reached at all)."""

    def __init__(self, client: BridgeClient, last_event_id: str | None, as_json: bool) -> None:
        self.client, self.last, self.as_json = client, last_event_id, as_json
        self.out, self.grace, self.connected_once = console(), Grace(), False

    def read_once(self) -> None:
        """Print events until the stream ends: the daemon is stopping or restarting. It was
        there, so the caller waits for it to come back."""
        for ev in self.client.events(last_event_id=self.last):
            self.connected_once = True
            self.grace.back()
            self.last = ev.id if ev.id is not None else self.last
            _print_event(self.out, ev, self.as_json)
        self.connected_once = True
        self.grace.back()

    def keep_trying(self) -> bool:
        """Whether to wait for a daemon that cannot be reached: not if it never was, nor once
        it has been gone longer than the grace period."""
        if not self.connected_once:
            return False
        if self.grace.since is None:
            click.echo("(lost the daemon; reconnecting)", err=True)
        return self.grace.lost()

    def run(self) -> None:
        while True:
            try:
                self.read_once()
            except DaemonUnavailable:
                if not self.keep_trying():
                    raise
            self.grace.pause()


@click.command()
@click.option("--last-event-id", help="Resume after this event id.")
@json_option
@click.pass_obj
def events(obj: Ctx, last_event_id: str | None, as_json: bool) -> None:
    """Print the daemon's events as they happen, until Ctrl-C."""
    stream = _Stream(obj.client(), last_event_id, as_json)
    with reporting(as_json=as_json):
        try:
            stream.run()
        except KeyboardInterrupt:
            return


__all__ = ["events"]
