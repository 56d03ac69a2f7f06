"""Joining the mediator's relay: the credential file copied into the home (0600) and the
``[relay]`` table written in ``bridge.toml`` (``bridge relay join``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bridge.core.errors import UsageError
from bridge.home.addresses import check_relay_url
from bridge.home.config import RelayTable
from bridge.home.files import write_file
from bridge.home.folder import Home

TLS_CA_NAME = "relay-ca.pem"


def join_relay(home: Home, url: str, creds: bytes, *, tls_ca: bytes | None = None
               ) -> RelayTable:
    """Copy ``creds`` (the credential file's bytes, already checked to hold a user nkey
    seed) to ``HOME/relay.creds`` and ``tls_ca`` to ``HOME/relay-ca.pem``, both 0600, and
    write the ``[relay]`` table. Everything is checked before anything is written; joining
    again replaces the earlier relay."""
    cfg = home.config()
    clean = check_relay_url(url)
    if clean.startswith("tls://") and tls_ca is None:
        raise UsageError("a tls:// relay needs --tls-ca (the CA certificate the mediator's "
                         "broker certificate chains to, handed out with the credentials)")
    if tls_ca is not None and not clean.startswith("tls://"):
        raise UsageError("--tls-ca is for a tls:// relay URL; this one is nats://")
    relay = RelayTable(url=clean, creds=home.relay_creds_path.name,
                       tls_ca=TLS_CA_NAME if tls_ca is not None else None)
    if cfg.relay is not None:  # joining again keeps the tuning of the earlier [relay]
        relay = dataclasses.replace(relay, answer_wait=cfg.relay.answer_wait,
                                    fetch_batch=cfg.relay.fetch_batch)
    write_file(home.relay_creds_path, creds, replace=True)
    if tls_ca is not None:
        write_file(home.path / TLS_CA_NAME, tls_ca, replace=True)
    home.write_config(dataclasses.replace(cfg, relay=relay))
    return relay


def read_small_file(path: Path, what: str, limit: int = 64 * 1024) -> bytes:
    """A small file the operator names (a credential file, a CA certificate), read once."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise UsageError(f"{path} is not {what}: over {limit} bytes")
    return data


__all__ = ["TLS_CA_NAME", "join_relay", "read_small_file"]
