"""The ``bridge`` command: parse, call, print. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bridge.cli.verify import verify
from bridge.client import BridgeClient, DaemonUnavailable
from bridge.core.errors import BridgeError
from bridge.core.printable import printable, printable_lines
from bridge.home.files import write_file
from bridge.home.folder import DEFAULT_LISTEN, Home, default_home

T = TypeVar("T")

force_option = click.option("--force", is_flag=True,
                            help="Replace the output file if it exists (never a symbolic link).")


def _fail(err: BridgeError, code: int = 1) -> NoReturn:
    click.echo(f"error: {printable_lines(err)}", err=True)
    sys.exit(code)


def _ask_daemon(obj: Ctx, call: Callable[[BridgeClient], T]) -> T:
    """Call the running daemon; a missing daemon exits 3, any other Bridge error 1."""
    try:
        return call(BridgeClient(str(obj.home.socket_path)))
    except DaemonUnavailable as err:
        _fail(err, 3)
    except BridgeError as err:
        _fail(err)


def read_passphrase(path: Path | None) -> bytes | None:
    if path is None:
        return None
    data = path.read_bytes().rstrip(b"\r\n")
    if not data:
        raise click.UsageError(f"passphrase file {path} is empty")
    return data


class Ctx:
    def __init__(self, home: Path) -> None:
        self.home = Home(home)


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


@main.command()
@click.option("--party", required=True, help="This party's name (lowercase, e.g. alpha).")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True,
              help="HOST:PORT of the peer endpoint.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Seal the private key with the passphrase in this file (Argon2id).")
@click.option("--tls", is_flag=True,
              help="Serve the peer endpoint over TLS with a self-signed certificate that the "
                   "peer pins (see bridge tls).")
@click.pass_obj
def init(obj: Ctx, party: str, listen: str, passphrase_file: Path | None, tls: bool) -> None:
    """Create a home: keys, identity file and configuration."""
    try:
        ident = obj.home.init(party, listen=listen, passphrase=read_passphrase(passphrase_file),
                              tls=tls)
    except BridgeError as err:
        _fail(err)
        return
    click.echo(f"Created Bridge home {obj.home.path} for party {ident.party}")
    click.echo(f"  private key:   {obj.home.private_key_path(party)} (mode 0600)")
    click.echo(f"  identity file: {obj.home.public_key_path(party)} (give this to your peer)")
    click.echo(f"  fingerprint:   {ident.public.fingerprint}")
    if tls:
        from bridge.home.tls import TlsFiles, file_fingerprint, format_tls_fingerprint

        fp = format_tls_fingerprint(file_fingerprint(TlsFiles.of(obj.home.tls_dir)))
        click.echo(f"  TLS SHA-256:   {fp}")


@main.group()
def keys() -> None:
    """Show and manage this party's keys."""


@keys.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_show(obj: Ctx, as_json: bool) -> None:
    """Print the party and its fingerprint, grouped for reading aloud."""
    from bridge.home.tls import TlsFiles, file_fingerprint, format_tls_fingerprint

    try:
        pub = obj.home.public_identity()
        cert = TlsFiles.of(obj.home.tls_dir)
        tls_fp = file_fingerprint(cert) if cert.cert.exists() else None
    except BridgeError as err:
        _fail(err)
        return
    if as_json:
        out: dict[str, Any] = {"party": pub.party, "fingerprint": pub.fingerprint,
                               "key_id": pub.key_id.hex(),
                               "identity_file": str(obj.home.public_key_path(pub.party))}
        if tls_fp:
            out["tls_fingerprint"] = tls_fp
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"party:       {pub.party}")
        click.echo(f"fingerprint: {pub.fingerprint}")
        if tls_fp:
            click.echo(f"TLS SHA-256: {format_tls_fingerprint(tls_fp)}")
        click.echo("Read the fingerprint aloud to your peer and compare it with theirs.")


main.add_command(verify)


@main.command()
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the passphrase of a sealed private key.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["logfmt", "json"]), default="logfmt",
              show_default=True, help="Log lines on stderr as key=value or as JSON objects.")
@click.pass_obj
def daemon(obj: Ctx, passphrase_file: Path | None, log_level: str, log_format: str) -> None:
    """Run the bridge daemon in the foreground (stop with Ctrl-C or SIGTERM; SIGHUP reloads
    the pinned peers). Logs go to stderr (the journal, under systemd)."""
    from bridge.daemon.run import run_daemon

    try:
        run_daemon(obj.home, passphrase=read_passphrase(passphrase_file), log_level=log_level,
                   log_format=log_format)
    except BridgeError as err:
        _fail(err)

from bridge.cli.local import ack, events, inbox, items_cmd, peer, send, status  # noqa: E402

main.add_command(peer)
main.add_command(send)
main.add_command(status)
main.add_command(inbox)
main.add_command(ack)
main.add_command(items_cmd)
main.add_command(events)

from bridge.cli.audit import audit_group  # noqa: E402

main.add_command(audit_group)

from bridge.cli.reconcile import reconcile  # noqa: E402

main.add_command(reconcile)

from bridge.cli.tls import tls_group  # noqa: E402

main.add_command(tls_group)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON.")
@click.pass_obj
def doctor(obj: Ctx, as_json: bool) -> None:
    """Check this home (permissions, configuration, keys, pins, peers reachable, their TLS
    certificates and clocks, the daemon, free disk) and say what to fix. Changes nothing.
    Exit 0 when nothing failed, 1 otherwise."""
    from bridge.cli.doctor import FAIL, diagnose

    findings = diagnose(obj.home)
    if as_json:
        click.echo(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{f.status.upper():<4}  {f.check}: {printable(f.detail)}")
            if f.fix:
                click.echo(f"      fix: {printable(f.fix)}")
    sys.exit(1 if any(f.status == FAIL for f in findings) else 0)


@main.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the two homes, logs and receipts in this folder.")
def demo(keep: Path | None) -> None:
    """Two bridges on this machine exchange a roster and a manifest, acknowledge every item,
    export receipts and verify them."""
    from bridge.cli.demo import run_demo

    try:
        run_demo(keep)
    except BridgeError as err:
        _fail(err)


@main.command()
@click.argument("doc")
@click.option("--item", "item_id", default=None, help="One item's receipt (default: the whole "
              "document's).")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None,
              help="Whether DOC was sent (out) or received (in), if both exist.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the receipt bundle (a new file, mode 0600).")
@force_option
@click.pass_obj
def receipt(obj: Ctx, doc: str, item_id: str | None, direction: str | None,
            output: Path, force: bool) -> None:
    """Export a receipt bundle that anyone can check offline with `bridge verify`.

    A whole-document receipt discloses every entry (every person on the list): the file is
    created 0600, and an existing file is replaced only with --force."""
    data = _ask_daemon(obj, lambda c: c.receipt(doc, item=item_id, direction=direction))
    try:
        write_file(output, data, replace=force)
    except BridgeError as err:
        _fail(err)
    what = f"item {item_id} of {doc}" if item_id else f"document {doc}"
    click.echo(f"wrote the receipt of {what} to {output} ({len(data)} bytes)")


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_rotate(obj: Ctx, as_json: bool) -> None:
    """Make new keys and announce them to every peer (signed by the old and the new key).

    The daemon must be running: the announcement travels like any envelope, and the peer pins
    the new key as soon as it has checked both signatures."""
    out = _ask_daemon(obj, lambda c: c.rotate_key())
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(printable(f"rotated: {out['old_fingerprint']} -> {out['fingerprint']}"))
    click.echo(printable(f"announced to: {', '.join(out['peers']) or 'no peer'}"))
    click.echo("Old receipts still verify with the key history, which names the old key and "
               "when it was retired: give verifiers bridge keys history -o FILE.")


@keys.command("revoke")
@click.option("--since", default=None,
              help="ISO 8601 time from which the key is compromised (default: now). Signatures "
                   "dated at or after it are void.")
@click.option("--reason", default="key compromised", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_revoke(obj: Ctx, since: str | None, reason: str, as_json: bool) -> None:
    """The key is compromised: revoke it, tell every peer, and change to new keys.

    Peers stop trusting the revoked key at once, but will not trust the new one until they pin
    it out of band (bridge peer add --replace, after comparing fingerprints): whoever stole the
    old key could have announced a key of their own."""
    out = _ask_daemon(obj, lambda c: c.revoke_key(since=since, reason=reason))
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(printable(f"revoked {out['revoked_fingerprint']} (since {out['since']})"))
    click.echo(printable(f"new key: {out['fingerprint']}"))
    click.echo("Give your new identity file to each peer and have them compare the fingerprint "
               "with you out of band, then run: bridge peer add FILE --url URL --fingerprint FP "
               "--replace")


@keys.command("history")
@click.option("--peer", default=None, help="The key history of this pinned peer, as learnt "
              "from its statements (default: this party's own).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the key history file.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.pass_obj
def keys_history(obj: Ctx, peer: str | None, output: Path, force: bool) -> None:
    """Export a party's key history: its identities and the rotation and revocation statements
    between them. A verifier needs it with the current identity file: without it, a retired
    key could sign anything dated after its retirement and still verify (PROTOCOL §4.6).

    Read-only; the daemon need not run."""
    from bridge.core.crypto.identity import check_party
    from bridge.home.keystore import KeyStore

    try:
        store = KeyStore(obj.home)
        if peer is None:
            history = store.own_history()
        else:
            check_party(peer, field_name="--peer")
            if peer not in obj.home.config().peers:
                raise click.UsageError(f"--peer: {peer} is not a pinned peer")
            history = store.peer_key_history(peer)
    except BridgeError as err:
        _fail(err, 2)
    try:
        write_file(output, history.dumps(), replace=force)
    except BridgeError as err:
        _fail(err, 2)
    party = history.identities[0].party
    click.echo(f"wrote the key history of {party} to {output}: "
               f"{len(history.identities)} key(s), {len(history.statements)} statement(s)")
    click.echo(f"Verify with: bridge verify FILE --keys {party}.pub --keys {output} …")
