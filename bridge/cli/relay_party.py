"""``bridge relay join``: a party's side of the relay. The mediator handed this party a
credential file and the broker's URL; joining copies the file into the home (0600) and writes
the ``[relay]`` table. Peers pinned ``--via relay`` are then delivered to through the broker,
and a home made without ``--listen`` opens no TCP port at all."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import EXISTING_FILE, json_option
from bridge.cli.output import echo_json
from bridge.home.relay import join_relay, read_small_file


@click.command("join")
@click.argument("url")
@click.option("--creds", required=True, type=EXISTING_FILE,
              help="The credential file the mediator handed you (NAME.creds).")
@click.option("--tls-ca", type=EXISTING_FILE, default=None,
              help="For a tls:// URL: the CA certificate (PEM) the broker's certificate must "
                   "chain to, handed out by the mediator; no other CA is trusted.")
@json_option
@click.pass_obj
def relay_join(obj: Ctx, url: str, creds: Path, tls_ca: Path | None, as_json: bool) -> None:
    """Join the mediator's relay at URL (nats://HOST:PORT, or tls://HOST:PORT with --tls-ca)."""
    from bridge.transports.relay.nkeys import parse_seed_file

    with reporting(as_json=as_json):
        data = read_small_file(creds, "a credential file")
        # Not ASCII is not a seed block: refused by the parser, which never quotes the text.
        key = parse_seed_file(data.decode("ascii", errors="replace"))
        ca = read_small_file(tls_ca, "a CA certificate") if tls_ca is not None else None
        relay = join_relay(obj.home, url, data, tls_ca=ca)
    if as_json:
        echo_json({"url": relay.url, "creds": str(obj.home.relay_creds_path),
                   "public_key": key.public, "tls_ca": relay.tls_ca})
        return
    click.echo(f"Joined the relay at {relay.url}")
    click.echo(f"  credentials:   {obj.home.relay_creds_path} (mode 0600)")
    click.echo(f"  user key:      {key.public} (the mediator's server lists it)")
    if relay.tls_ca:
        click.echo(f"  pinned CA:     {obj.home.path / relay.tls_ca}")
    click.echo("Pin each peer with: bridge peer add PEER.pub --fingerprint FP --via relay")
    if obj.home.socket_path.exists():
        click.echo("A running daemon reads the relay when it starts: restart it to use this.")


__all__ = ["relay_join"]
