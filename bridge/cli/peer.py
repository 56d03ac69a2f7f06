"""``bridge peer``: pin peers (their identity files and addresses) in this home, and list them.
No daemon needed: the pins live in ``bridge.toml`` (:mod:`bridge.home.peers`)."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_option
from bridge.cli.output import console, echo_json, table
from bridge.core.errors import InputError
from bridge.core.printable import printable
from bridge.home.config import PeerConfig, Via
from bridge.home.folder import Home
from bridge.home.peers import PinResult, check_peer_url, list_peers, pin_peer
from bridge.home.tls import format_tls_fingerprint

_VERBS = {"added": "Pinned", "updated": "Updated", "unchanged": "Already pinned",
          "replaced": "Replaced the key of"}


def _url_option(_ctx: click.Context, _param: click.Parameter, value: str | None
                ) -> str | None:
    if value is None:
        return None
    try:
        return check_peer_url(value)
    except InputError as err:
        raise click.BadParameter(err.detail) from err


@click.group()
def peer() -> None:
    """Pin peers (their identity files and addresses) and list them."""


def _print_pinned(home: Home, result: PinResult) -> None:
    p = result.peer
    click.echo(f"{_VERBS[result.action]} peer {printable(p.name)}")
    click.echo(f"  url:           {p.url}" if p.url else f"  via:           {p.via}")
    click.echo(f"  fingerprint:   {p.fingerprint}")
    if p.tls_fingerprint:
        click.echo(f"  TLS (SHA-256): {format_tls_fingerprint(p.tls_fingerprint)}")
    elif p.url and p.url.startswith("https://"):
        click.echo("warning: an https:// peer needs --tls-fingerprint; the daemon will not "
                   "start until it is pinned", err=True)
    click.echo(f"  identity file: {result.identity_file}")
    if result.action != "unchanged" and home.socket_path.exists():
        click.echo("A running daemon reads its peers when it starts: restart it to use this.")


@peer.command("add")
@click.argument("pubfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, callback=_url_option,
              help="The peer's endpoint, http(s)://HOST:PORT (for --via http).")
@click.option("--via", type=click.Choice(["http", "relay", "carry"]), default="http",
              show_default=True,
              help="How the peer is reached: its HTTP endpoint (--url), the mediator's relay "
                   "(after bridge relay join), or envelopes carried in files.")
@click.option("--fingerprint", required=True,
              help="The fingerprint the peer read to you out of band (any case or spacing).")
@click.option("--tls-fingerprint", default=None, metavar="SHA256",
              help="SHA-256 of the peer endpoint's TLS certificate (from the peer's `bridge keys "
                   "show`), for an https:// URL; checked on every connection.")
@click.option("--replace", is_flag=True,
              help="Accept a new key for an already pinned peer (a confirmed key change).")
@click.option("--drop-tls", is_flag=True,
              help="Accept an http:// URL for a peer pinned over TLS (a confirmed downgrade).")
@json_option
@click.pass_obj
def peer_add(obj: Ctx, pubfile: Path, url: str | None, via: Via, fingerprint: str,
             tls_fingerprint: str | None, replace: bool, drop_tls: bool, as_json: bool) -> None:
    """Pin the peer whose identity file is PUBFILE, after checking its fingerprint."""
    with reporting(as_json=as_json):
        result = pin_peer(obj.home, pubfile, url=url, fingerprint=fingerprint,
                          replace_key=replace, tls_fingerprint=tls_fingerprint,
                          drop_tls=drop_tls, via=via)
    if not as_json:
        _print_pinned(obj.home, result)
        return
    p = result.peer
    echo_json({"name": p.name, **_route(p), "fingerprint": p.fingerprint,
               **({"tls_fingerprint": p.tls_fingerprint} if p.tls_fingerprint else {}),
               "action": result.action, "identity_file": str(result.identity_file)})


def _route(p: PeerConfig) -> dict[str, str]:
    """How a peer is reached, for JSON: its URL (as before), or ``via`` for the others."""
    return {"url": p.url} if p.url else {"via": p.via}


@peer.command("list")
@json_option
@click.pass_obj
def peer_list(obj: Ctx, as_json: bool) -> None:
    """List the pinned peers (from bridge.toml; no daemon needed)."""
    with reporting(as_json=as_json):
        peers = list_peers(obj.home)
    if as_json:
        echo_json([{"name": p.name, **_route(p), "fingerprint": p.fingerprint,
                    **({"tls_fingerprint": p.tls_fingerprint} if p.tls_fingerprint else {})}
                   for p in peers])
        return
    if not peers:
        click.echo(f"No peers pinned. Add one with: bridge --home {obj.home.path} peer add "
                   "PUBFILE --url URL --fingerprint FP")
        return
    console().print(table(("NAME", "URL", "FINGERPRINT"),
                          ((p.name, p.url or f"via {p.via}", p.fingerprint) for p in peers)))


__all__ = ["peer"]
