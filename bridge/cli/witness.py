"""``bridge witness``: the mediator's witness (``init``, ``add-origin``, ``run``, ``log``, run
in the witness's own home), and the party's side of it (``pin``, ``status``, run in a party's
home). PROTOCOL.md §13; through the mediator's relay, §13.8."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import EXISTING_FILE, json_option
from bridge.cli.progress import cosigned_text
from bridge.core.errors import UsageError
from bridge.core.printable import printable
from bridge.core.receipts import iso_time
from bridge.home.addresses import VIA_HTTP, VIA_RELAY, WitnessVia, parse_listen
from bridge.home.key_files import load_public

DEFAULT_WITNESS_LISTEN = "127.0.0.1:8470"


@click.group()
def witness() -> None:
    """The witness: neutral, cosigned time for each party's audit log."""


@witness.command("init")
@click.option("--party", required=True, help="The witness's name (e.g. mediator).")
@click.pass_obj
def witness_init(obj: Ctx, party: str) -> None:
    """Create a witness home: its key and the identity file the parties pin."""
    from bridge.witness.home import WitnessHome, key_name

    with reporting():
        home = WitnessHome(obj.home.path)
        me = home.init(party)
    click.echo(f"witness {me.party} created in {home.path}")
    click.echo(f"identity file: {home.public_path(party)} (give it to each party)")
    click.echo(f"cosigner name: {key_name(me.public)}")
    click.echo(f"fingerprint:   {me.public.fingerprint}")


@witness.command("add-origin")
@click.argument("identity_file", type=EXISTING_FILE)
@click.pass_obj
def witness_add_origin(obj: Ctx, identity_file: Path) -> None:
    """Witness the audit log of the party whose identity file this is."""
    from bridge.witness.home import WitnessHome

    with reporting():
        ident = load_public(identity_file)
        with contextlib.closing(WitnessHome(obj.home.path).state()) as state:
            origin = state.add_origin(ident, _now())
    click.echo(f"witnessing {printable(ident.party)}: origin {printable(origin)}")
    click.echo(f"fingerprint: {ident.fingerprint} (compare it with the party's)")


@witness.command("run")
@click.option("--listen", default=None,
              help="HOST:PORT for HTTP (default 127.0.0.1:8470, or none with --relay).")
@click.option("--relay", "relay_url", default=None,
              help="Also (or only) serve through the mediator's relay, nats://HOST:PORT.")
@click.option("--creds", type=EXISTING_FILE, default=None,
              help="The witness's credential file for the relay (relay add-witness).")
@click.option("--tls-ca", type=EXISTING_FILE, default=None,
              help="The CA the relay's certificate chains to, for a tls:// relay.")
@click.option("--port-file", type=click.Path(path_type=Path), default=None,
              help="Write the bound port here (useful with port 0).")
@click.option("--ready-file", type=click.Path(path_type=Path), default=None,
              help="Write {\"port\", \"relay\"} here (JSON) once serving.")
@click.pass_obj
def witness_run(obj: Ctx, listen: str | None, relay_url: str | None, creds: Path | None,
                tls_ca: Path | None, port_file: Path | None, ready_file: Path | None) -> None:
    """Serve add-checkpoint (C2SP tlog-witness) over HTTP and/or the relay until stopped."""
    from bridge.witness.home import WitnessHome
    from bridge.witness.relay import RelaySettings
    from bridge.witness.service import serve

    with reporting():
        relay = None
        if relay_url is not None:
            if creds is None:
                raise UsageError("--relay needs --creds (the witness's credential file)")
            relay = RelaySettings(url=relay_url, creds=creds, tls_ca=tls_ca)
        elif creds is not None or tls_ca is not None:
            raise UsageError("--creds and --tls-ca are for --relay")
        if listen is None and relay is None:
            listen = DEFAULT_WITNESS_LISTEN
        where = parse_listen(listen) if listen is not None else None
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(WitnessHome(obj.home.path), where, relay=relay,
                              port_file=port_file, ready_file=ready_file))


@witness.command("log")
@json_option
@click.option("--limit", default=1000, show_default=True, help="The last N requests.")
@click.pass_obj
def witness_log(obj: Ctx, as_json: bool, limit: int) -> None:
    """Every checkpoint cosigned and every one refused, with why."""
    from bridge.witness.home import WitnessHome

    with reporting(as_json=as_json):
        with contextlib.closing(WitnessHome(obj.home.path).state()) as state:
            rows = state.requests(limit)
            origins = state.origins()
    if as_json:
        click.echo(json.dumps({"origins": [{"origin": o, "party": p, "size": s}
                                           for o, p, s in origins],
                               "requests": [r.to_json() for r in rows]}, indent=2))
        return
    for o, p, s in origins:
        click.echo(f"origin {printable(o)} ({printable(p)}): cosigned up to size "
                   f"{s if s is not None else 'none yet'}")
    for r in rows:
        what = "cosigned" if r.status == 200 else f"refused {r.status}"
        size = f"size {r.size}" if r.size is not None else "size ?"
        click.echo(f"{iso_time(r.at * 1000)}  {what:<12} {printable(r.origin or '-')} {size} "
                   f"old {r.old if r.old is not None else '?'}: {printable(r.reason)}"
                   f"{'' if r.status == 200 else ' — ' + printable(r.detail)}")


@witness.command("pin")
@click.argument("identity_file", type=EXISTING_FILE)
@click.option("--url", default=None, help="The witness's address, http(s)://HOST:PORT "
                                          "(for --via http).")
@click.option("--via", type=click.Choice([VIA_HTTP, VIA_RELAY]), default=VIA_HTTP,
              show_default=True,
              help="How the witness is reached: its URL, or the mediator's relay (this home "
                   "joined it: bridge relay join).")
@click.option("--fingerprint", required=True,
              help="The witness's fingerprint, as its operator read it to you.")
@click.option("--interval", type=float, default=None,
              help="Submit at least this often (seconds) while the log grows (default 5).")
@click.pass_obj
def witness_pin(obj: Ctx, identity_file: Path, url: str | None, via: WitnessVia, fingerprint: str,
                interval: float | None) -> None:
    """Submit this party's audit log to a witness (takes effect when the daemon restarts)."""
    from bridge.home.witnesses import pin_witness

    with reporting():
        w = pin_witness(obj.home, identity_file, url=url, via=via, fingerprint=fingerprint,
                        interval_seconds=interval)
    where = f"at {w.url}" if w.url else "through the relay"
    click.echo(f"pinned witness {w.name} {where} (fingerprint {w.fingerprint})")


@witness.command("status")
@json_option
@click.pass_obj
def witness_status(obj: Ctx, as_json: bool) -> None:
    """The pinned witnesses: how each is reached, and what it has cosigned of this party's
    audit log and when (from the running daemon; without one, the pins alone)."""
    from bridge.client import DaemonUnavailable

    with reporting(as_json=as_json):
        pins = obj.home.config().witnesses
        try:
            health: dict[str, Any] | None = obj.client().health()
        except DaemonUnavailable:
            health = None
    seen = (health or {}).get("witnesses") or {}
    rows = {name: {"via": w.via, "url": w.url, "fingerprint": w.fingerprint,
                   "interval_seconds": w.interval_seconds, **(seen.get(name) or {})}
            for name, w in sorted(pins.items())}
    faults = {code: detail for code, detail in ((health or {}).get("faults") or {}).items()
              if str(code).startswith("witness_")}
    if as_json:
        click.echo(json.dumps({"daemon_running": health is not None, "witnesses": rows,
                               "faults": faults}, indent=2))
        return
    if not rows:
        click.echo("No witness pinned (bridge witness pin FILE --url URL | --via relay).")
    for name, row in rows.items():
        click.echo(f"witness {printable(name)}: {_reached(row)}, fingerprint "
                   f"{printable(row['fingerprint'])}")
        click.echo(f"  {cosigned_text(row) if health is not None else 'daemon not running'}")
    for code, detail in faults.items():
        click.echo(f"fault {printable(str(code))}: {printable(str(detail))}")


def _reached(row: dict[str, Any]) -> str:
    return "through the relay" if row["via"] == VIA_RELAY else f"at {printable(row['url'])}"


def _now() -> int:
    import time

    return int(time.time())


__all__ = ["witness"]
