"""``bridge tls``: the peer endpoint's TLS certificate (bridge/home/tls.py)."""

from __future__ import annotations

import dataclasses
import json

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_output_option
from bridge.home.tls import TlsFiles, create_certificate, file_fingerprint, format_tls_fingerprint


@click.group("tls")
def tls_group() -> None:
    """TLS on the peer endpoint: a self-signed certificate that the peer pins."""


@tls_group.command("init")
@json_output_option
@click.pass_obj
def tls_init(obj: Ctx, as_json: bool) -> None:
    """Make the peer endpoint's certificate (if there is none) and turn TLS on.

    Give the printed SHA-256 to each peer with your identity file; they pin it with
    `bridge peer add ... --url https://HOST:PORT --tls-fingerprint SHA256`. Restart the daemon."""
    home = obj.home
    files = TlsFiles.of(home.tls_dir)
    with reporting(as_json=as_json):
        cfg = home.config()
        created = not files.exist()
        fp = create_certificate(home.tls_dir, cfg.party) if created else file_fingerprint(files)
        if not cfg.tls_enabled:
            home.write_config(dataclasses.replace(cfg, tls_enabled=True))
    if as_json:
        click.echo(json.dumps({"certificate": str(files.cert), "created": created,
                               "tls_fingerprint": fp, "enabled": True}, indent=2))
        return
    click.echo(f"{'Created' if created else 'Kept'} the TLS certificate {files.cert}")
    click.echo(f"  SHA-256: {format_tls_fingerprint(fp)}")
    click.echo("TLS is on: peers reach this endpoint at https://HOST:PORT and pin the SHA-256 "
               "above (bridge peer add ... --tls-fingerprint). Restart the daemon to use it.")


@tls_group.command("show")
@json_output_option
@click.pass_obj
def tls_show(obj: Ctx, as_json: bool) -> None:
    """Print whether TLS is on and the certificate's SHA-256 fingerprint."""
    files = TlsFiles.of(obj.home.tls_dir)
    with reporting(as_json=as_json):
        cfg = obj.home.config()
        fp = file_fingerprint(files) if files.cert.exists() else None
    if as_json:
        click.echo(json.dumps({"enabled": cfg.tls_enabled, "tls_fingerprint": fp,
                               "certificate": str(files.cert) if fp else None}, indent=2))
        return
    click.echo(f"tls:         {'on' if cfg.tls_enabled else 'off'}")
    click.echo(f"certificate: {files.cert if fp else 'none (bridge tls init makes one)'}")
    if fp:
        click.echo(f"SHA-256:     {format_tls_fingerprint(fp)}")


__all__ = ["tls_group"]
