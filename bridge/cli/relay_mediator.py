"""The mediator's ``bridge relay`` commands: ``init``, ``add-party``, ``add-witness``, ``run``,
``status``. The
home (``--home``) is the mediator's own (bridge/transports/relay/mediator.py), not a party's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.options import json_option
from bridge.core.errors import UsageError
from bridge.core.printable import json_text
from bridge.core.times import format_ms
from bridge.home.tls import cert_fingerprint, format_tls_fingerprint
from bridge.transports.relay import admin
from bridge.transports.relay.mediator import (
    DEFAULT_LISTEN,
    MediatorHome,
    RelayConfig,
    init_home,
)
from bridge.transports.relay.mediator import (
    add_party as add_party_to,
)
from bridge.transports.relay.mediator import (
    add_witness as add_witness_to,
)
from bridge.transports.relay.server import (
    admin_tls,
    configured_port,
    url_of,
    write_server_config,
)


def _home(obj: Ctx) -> MediatorHome:
    return MediatorHome(obj.home.path)


def _count(config: RelayConfig) -> str:
    parties, pairs = len(config.parties), len(config.pairs())
    return (f"{parties} part{'y' if parties == 1 else 'ies'}, "
            f"{pairs} pair{'' if pairs == 1 else 's'}")


def _url_hint(config: RelayConfig) -> str:
    port = configured_port(config)
    return url_of(config, port) if port > 0 else "nats://HOST:PORT (the port relay run gets)"


def _print_handout(home: MediatorHome, config: RelayConfig, names: list[str]) -> None:
    url = _url_hint(config)
    click.echo("Hand each party its credential file (mode 0600: it is that party's key to the "
               "relay; send it as you would a key) and the URL:")
    for name in names:
        peers = ", ".join(config.parties[name].peers) or "none yet"
        click.echo(f"  {name}: {home.creds_path(name)}  (exchanges with: {peers})")
        click.echo(f"      bridge --home HOME relay join {url} --creds {name}.creds"
                   + (" --tls-ca cert.pem" if config.relay.tls_cert else ""))
    if config.relay.tls_cert:
        click.echo(f"With them, the relay's certificate {home.resolve(config.relay.tls_cert)} "
                   "(public: each party pins it as the relay's CA; compare its SHA-256 out of "
                   "band).")
    click.echo(f"The parties' hosts name this host instead of {url.split('//')[1].split(':')[0]}"
               " when they run elsewhere; in production serve TLS (README, \"The relay\").")


@click.command("init")
@click.option("--party", "parties", multiple=True, required=True,
              help="A party that exchanges through this relay (repeat: every two are paired).")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True,
              help="HOST:PORT where the NATS server listens (port 0: any free port).")
@click.option("--tls", is_flag=True,
              help="Serve TLS with a new self-signed certificate (tls/cert.pem: hand it to "
                   "the parties, who pin it).")
@click.option("--witness", "witnesses", multiple=True,
              help="The name of a witness the parties reach through this relay (repeat; "
                   "see add-witness).")
@click.pass_obj
def relay_init(obj: Ctx, parties: tuple[str, ...], listen: str, tls: bool,
               witnesses: tuple[str, ...]) -> None:
    """Create a relay home: the server's configuration, and a credential file per party."""
    home = _home(obj)
    with reporting():
        config = init_home(home, parties, listen, tls=tls, witnesses=witnesses)
        write_server_config(home, config, configured_port(config))
    click.echo(f"Created the relay home {home.path}: {_count(config)}")
    click.echo(f"  configuration:  {home.config_path}")
    click.echo(f"  server config:  {home.server_config_path} (written again at each start)")
    click.echo(f"  store:          {home.data_dir} (JetStream, file storage)")
    click.echo(f"  admin:          {home.admin_creds} (keep it: relay run and status use it)")
    if config.relay.tls_cert:
        cert = home.resolve(config.relay.tls_cert)
        click.echo(f"  TLS:            {cert} (SHA-256 "
                   f"{format_tls_fingerprint(cert_fingerprint(cert.read_bytes()))})")
    _print_handout(home, config, sorted(config.parties))
    for name in sorted(config.witnesses):
        _print_witness(home, config, name)
    click.echo(f"Run it with: bridge --home {home.path} relay run")


def _print_witness(home: MediatorHome, config: RelayConfig, name: str) -> None:
    click.echo(f"Witness {name}: its credential file {home.creds_path(name)} (mode 0600) is "
               "for the witness's own process:")
    click.echo(f"      bridge --home WITNESS_HOME witness run --relay {_url_hint(config)} "
               f"--creds {name}.creds" + (" --tls-ca cert.pem" if config.relay.tls_cert else ""))
    click.echo(f"  each party then pins it with: bridge --home HOME witness pin {name}.pub "
               "--via relay --fingerprint FP")


def _signal_running(home: MediatorHome) -> bool:
    """Ask a running ``relay run`` of this home to reload (SIGHUP); whether one was found."""
    try:
        pid = int(json.loads(home.state_path.read_text("utf-8"))["relay_pid"])
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


@click.command("add-party")
@click.argument("name")
@click.option("--peer", "peers", multiple=True,
              help="A party it exchanges with (repeat; default: every party of the relay).")
@click.option("--no-peers", is_flag=True,
              help="Pair it with no one yet (a later add-party --peer NAME pairs it).")
@click.pass_obj
def add_party(obj: Ctx, name: str, peers: tuple[str, ...], no_peers: bool) -> None:
    """Add a party (its credential file, its pairs) to this relay."""
    home = _home(obj)
    with reporting():
        if no_peers and peers:
            raise UsageError("--no-peers and --peer exclude each other")
        config = add_party_to(home, name, () if no_peers else (peers or None))
    click.echo(f"Added party {name} to the relay {home.path}")
    _print_handout(home, config, [name])
    if _signal_running(home):
        click.echo("The running relay was asked to reload (SIGHUP): the new party can connect "
                   "once it has.")
    else:
        click.echo(f"Start the relay (bridge --home {home.path} relay run) to use it.")


@click.command("add-witness")
@click.argument("name")
@click.pass_obj
def add_witness(obj: Ctx, name: str) -> None:
    """Add a witness (by the name in its identity file) that every party reaches through this
    relay: its credential file, and each party's right to send it checkpoints."""
    home = _home(obj)
    with reporting():
        config = add_witness_to(home, name)
    click.echo(f"Added witness {name} to the relay {home.path}")
    _print_witness(home, config, name)
    if _signal_running(home):
        click.echo("The running relay was asked to reload (SIGHUP).")
    else:
        click.echo(f"Start the relay (bridge --home {home.path} relay run) to use it.")


@click.command("run")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.pass_obj
def relay_run(obj: Ctx, log_level: str) -> None:
    """Run the relay's NATS server in the foreground: restarted when it exits, stopped cleanly
    by SIGTERM or Ctrl-C; SIGHUP re-reads relay.toml. Logs go to stderr, the server's own to
    HOME/logs/nats-server.log."""
    from bridge.daemon.logs import setup_logging
    from bridge.transports.relay.server import find_server
    from bridge.transports.relay.supervise import run_relay

    home = _home(obj)
    with reporting(failed=Exit.USAGE):
        home.config()
        binary = find_server()
        setup_logging(log_level)
        asyncio.run(run_relay(home, binary))


def _running_url(home: MediatorHome, config: RelayConfig) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        state = json.loads(home.state_path.read_text("utf-8"))
        if state.get("url"):
            return str(state["url"])
    port = configured_port(config)
    if port <= 0:
        raise click.ClickException("the relay is not running (no HOME/relay.state.json) and "
                                   "listens on port 0: start it with relay run")
    return url_of(config, port)


async def _status(home: MediatorHome, config: RelayConfig, url: str) -> list[admin.StreamStatus]:
    nc = await admin.connect_admin(url, str(home.admin_creds), tls=admin_tls(home, config))
    try:
        return await admin.relay_status(nc, config)
    finally:
        await nc.close()


def _print_status(url: str, config: RelayConfig, rows: list[admin.StreamStatus]) -> None:
    click.echo(f"relay {url}: {_count(config)} "
               "(counts, sizes and times only: the relay never shows contents)")
    for row in rows:
        click.echo(f"to {row.party}: {row.messages} waiting, {row.bytes} bytes, "
                   f"{row.being_processed} being processed, {row.redelivered} redelivered, "
                   f"{'pulling now' if row.pulling else 'not pulling'}")
        click.echo(f"  last message {row.last_message_at or 'never'}, "
                   f"last delivery {row.last_delivery_at or 'never'}")
        for peer in config.parties[row.party].peers:
            click.echo(f"  from {peer}: {row.waiting_from.get(peer, 0)} waiting")
        if "?" in row.waiting_from:
            click.echo(f"  on other subjects: {row.waiting_from['?']} waiting")


@click.command("status")
@json_option
@click.pass_obj
def relay_status(obj: Ctx, as_json: bool) -> None:
    """What waits for each party on the running relay, per pair: messages, bytes, last
    activity (never contents). Uses the admin's credentials."""
    home = _home(obj)
    with reporting(as_json=as_json):
        config = home.config()
        url = _running_url(home, config)
        rows = asyncio.run(_status(home, config, url))
    if as_json:
        pairs: list[dict[str, Any]] = [
            {"pair": [a, b], f"to_{a}": _waiting(rows, a, b), f"to_{b}": _waiting(rows, b, a)}
            for a, b in config.pairs()]
        click.echo(json_text({"url": url, "at": format_ms(_now_ms()),
                              "parties": [r.to_json() for r in rows], "pairs": pairs}))
        return
    _print_status(url, config, rows)


def _waiting(rows: list[admin.StreamStatus], to: str, sender: str) -> int:
    return next((r.waiting_from.get(sender, 0) for r in rows if r.party == to), 0)


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["add_party", "add_witness", "relay_init", "relay_run", "relay_status"]
