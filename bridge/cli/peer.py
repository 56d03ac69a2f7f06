"""``bridge peer``: pin peers (their identity files and addresses) in this home, and list them.
No daemon needed: the pins live in ``bridge.toml`` (:mod:`bridge.home.peers`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_option
from bridge.cli.output import console, echo_json, table
from bridge.client import BridgeClient
from bridge.core.crypto.identity import check_party
from bridge.core.errors import BridgeError, InputError, UsageError
from bridge.core.printable import printable
from bridge.home.addresses import check_peer_url
from bridge.home.folder import Home
from bridge.home.tls import format_tls_fingerprint
from bridge.store.sqlite.pending import pending_with

if TYPE_CHECKING:  # pinning reads and writes bridge.toml: its model (pydantic) loads then
    from bridge.home.config import PeerConfig, Via
    from bridge.home.peers import PinResult

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
    """Pin peers (their identity files and addresses), remove them, and list them. A running
    daemon is told at once (as on SIGHUP): no restart."""


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
        _tell_daemon(home)


def _tell_daemon(home: Home) -> None:
    """A running daemon re-reads its peers (as on SIGHUP): the change applies now."""
    try:
        BridgeClient(str(home.socket_path), timeout=10).reload_peers()
    except BridgeError as err:
        click.echo(f"The running daemon could not be told ({err}); send it SIGHUP or run "
                   "`bridge peer reload` to apply this.", err=True)
        return
    click.echo("The running daemon applies this now (no restart needed).")


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
    from bridge.home.peers import pin_peer  # here: bridge --help loads no pydantic

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


@peer.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Unpin even while documents to or from the peer are still open.")
@json_option
@click.pass_obj
def peer_remove(obj: Ctx, name: str, force: bool, as_json: bool) -> None:
    """Unpin peer NAME: nothing more is sent to it or accepted from it. Its history stays
    (documents, acknowledgements, receipts, the audit log and its identity file)."""
    with reporting(as_json=as_json):
        check_party(name, field_name="name")
        open_now = pending_with(obj.home.db_path, name)
        if open_now.any and not force:
            raise UsageError(
                f"peer {name!r} still has {open_now.envelopes} envelope(s) queued for it and "
                f"{open_now.unacknowledged} item(s) not yet acknowledged. Removing it now "
                "leaves them undelivered or unanswered; finish them first, or run again with "
                "--force.")
        from bridge.home.peers import unpin_peer  # here: bridge --help loads no pydantic

        removed = unpin_peer(obj.home, name)
    if as_json:
        echo_json({"name": removed.name, "action": "removed",
                   "queued": open_now.envelopes, "unacknowledged": open_now.unacknowledged})
    else:
        click.echo(f"Removed peer {printable(name)}; its documents, receipts and audit records "
                   f"are kept, and its identity file stays in {obj.home.peers_dir}.")
    if obj.home.socket_path.exists():
        _tell_daemon(obj.home)


@peer.command("reload")
@json_option
@click.pass_obj
def peer_reload(obj: Ctx, as_json: bool) -> None:
    """Tell the running daemon to re-read its pinned peers (as SIGHUP does)."""
    with reporting(as_json=as_json):
        out = obj.client().reload_peers()
    if as_json:
        echo_json(out)
    else:
        click.echo(f"Reloaded; pinned peers: {', '.join(out.get('peers') or []) or 'none'}")


@peer.command("list")
@json_option
@click.pass_obj
def peer_list(obj: Ctx, as_json: bool) -> None:
    """List the pinned peers (from bridge.toml; no daemon needed)."""
    from bridge.home.peers import list_peers  # here: bridge --help loads no pydantic

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
