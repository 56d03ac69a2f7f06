"""``bridge keys``: this party's keys: show the fingerprint, rotate, revoke, and export the key
history that verifiers need (PROTOCOL.md §4.6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.options import json_output_option
from bridge.core.crypto.identity import check_party
from bridge.core.printable import printable
from bridge.home.files import write_file
from bridge.home.keystore import KeyStore
from bridge.home.tls import TlsFiles, file_fingerprint, format_tls_fingerprint


@click.group()
def keys() -> None:
    """Show and manage this party's keys."""


@keys.command("show")
@json_output_option
@click.pass_obj
def keys_show(obj: Ctx, as_json: bool) -> None:
    """Print the party and its fingerprint, grouped for reading aloud."""
    with reporting(as_json=as_json):
        pub = obj.home.public_identity()
        cert = TlsFiles.of(obj.home.tls_dir)
        tls_fp = file_fingerprint(cert) if cert.cert.exists() else None
    if as_json:
        out: dict[str, Any] = {"party": pub.party, "fingerprint": pub.fingerprint,
                               "key_id": pub.key_id.hex(),
                               "identity_file": str(obj.home.public_key_path(pub.party))}
        if tls_fp:
            out["tls_fingerprint"] = tls_fp
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"party:       {pub.party}")
    click.echo(f"fingerprint: {pub.fingerprint}")
    if tls_fp:
        click.echo(f"TLS SHA-256: {format_tls_fingerprint(tls_fp)}")
    click.echo("Read the fingerprint aloud to your peer and compare it with theirs.")


@keys.command("rotate")
@click.option("--suite", type=click.Choice(["1", "2"]), default=None,
              help="Key suite of the new keys (default: the current one). --suite 2 moves a "
                   "suite-1 party to post-quantum keys; a rotation never moves down.")
@json_output_option
@click.pass_obj
def keys_rotate(obj: Ctx, suite: str | None, as_json: bool) -> None:
    """Make new keys and announce them to every peer (signed by the old and the new key).

    The daemon must be running: the announcement travels like any envelope, and the peer pins
    the new key as soon as it has checked both signatures."""
    with reporting(as_json=as_json):
        out = obj.client().rotate_key(None if suite is None else int(suite))
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
@json_output_option
@click.pass_obj
def keys_revoke(obj: Ctx, since: str | None, reason: str, as_json: bool) -> None:
    """The key is compromised: revoke it, tell every peer, and change to new keys.

    Peers stop trusting the revoked key at once, but will not trust the new one until they pin
    it out of band (bridge peer add --replace, after comparing fingerprints): whoever stole the
    old key could have announced a key of their own."""
    with reporting(as_json=as_json):
        out = obj.client().revoke_key(since=since, reason=reason)
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
    with reporting(failed=Exit.USAGE):  # it only reads this home: a failure is a usage error
        store = KeyStore(obj.home)
        if peer is None:
            history = store.own_history()
        else:
            check_party(peer, field_name="--peer")
            if peer not in obj.home.config().peers:
                raise click.UsageError(f"--peer: {peer} is not a pinned peer")
            history = store.peer_key_history(peer)
        write_file(output, history.dumps(), replace=force)
    party = history.identities[0].party
    click.echo(f"wrote the key history of {party} to {output}: "
               f"{len(history.identities)} key(s), {len(history.statements)} statement(s)")
    click.echo(f"Verify with: bridge verify FILE --keys {party}.pub --keys {output} …")


__all__ = ["keys"]
