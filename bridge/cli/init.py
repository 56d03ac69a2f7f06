"""``bridge init``: create a home folder: keys, identity file and configuration."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import EXISTING_FILE, read_passphrase
from bridge.core.crypto import suites
from bridge.home.tls import TlsFiles, file_fingerprint, format_tls_fingerprint


@click.command()
@click.option("--party", required=True, help="This party's name (lowercase, e.g. alpha).")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Serve a peer endpoint at HOST:PORT (e.g. 127.0.0.1:7443) for peers that "
                   "deliver directly over HTTP. Left out, the daemon listens on no TCP port "
                   "(peers reached through the mediator's relay or the carrier).")
@click.option("--passphrase-file", type=EXISTING_FILE,
              help="Seal the private key with the passphrase in this file (Argon2id).")
@click.option("--tls", is_flag=True,
              help="Serve the peer endpoint over TLS with a self-signed certificate that the "
                   "peer pins (see bridge tls).")
@click.option("--suite", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Key suite: 2 is post-quantum (X-Wing encryption, Ed25519 + ML-DSA-65 "
                   "signatures); 1 (X25519, Ed25519) only for a peer that cannot read suite 2 "
                   "yet. Move up later with bridge keys rotate --suite 2.")
@click.pass_obj
def init(obj: Ctx, party: str, listen: str | None, passphrase_file: Path | None, tls: bool,
         suite: str) -> None:
    """Create a home: keys, identity file and configuration."""
    chosen = suites.by_number(int(suite))
    assert chosen is not None  # click.Choice offers only the table's numbers
    with reporting():
        ident = obj.home.init(party, listen=listen, passphrase=read_passphrase(passphrase_file),
                              tls=tls, suite=chosen)
    click.echo(f"Created Bridge home {obj.home.path} for party {ident.party}")
    click.echo(f"  private key:   {obj.home.private_key_path(party)} (mode 0600)")
    click.echo(f"  identity file: {obj.home.public_key_path(party)} (give this to your peer)")
    click.echo(f"  fingerprint:   {ident.public.fingerprint}")
    click.echo(f"  key suite:     {chosen.number} ({chosen.sign_name})")
    if obj.home.config().listen is None:
        click.echo("  peer endpoint: none (no TCP port; join a relay with bridge relay join)")
    if tls:
        fp = format_tls_fingerprint(file_fingerprint(TlsFiles.of(obj.home.tls_dir)))
        click.echo(f"  TLS SHA-256:   {fp}")


__all__ = ["init"]
