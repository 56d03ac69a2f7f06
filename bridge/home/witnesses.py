"""Pinned witnesses (PROTOCOL.md §13.4): a witness's identity file in ``keys/witnesses/``, checked
against the fingerprint the operator was given out of band, and its ``[witnesses.NAME]`` table.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from bridge.core.crypto.identity import PublicIdentity, normalise_fingerprint
from bridge.core.errors import UsageError
from bridge.home.addresses import check_peer_url
from bridge.home.config import VIA_HTTP, VIA_RELAY, WitnessConfig, WitnessVia
from bridge.home.files import write_file
from bridge.home.folder import Home
from bridge.home.key_files import load_public
from bridge.home.peers import read_checked_identity


def pin_witness(home: Home, identity_file: str | os.PathLike[str], *, url: str | None,
                fingerprint: str, interval_seconds: float | None = None,
                via: WitnessVia = "http") -> WitnessConfig:
    """Pin the witness whose identity file this is, reached at ``url`` or (``via="relay"``)
    through the mediator's relay this home joined; checks everything before writing."""
    cfg = home.config()
    if via == VIA_RELAY and url is not None:
        raise UsageError("--url is for a witness reached over http, not via the relay")
    if via == VIA_HTTP and url is None:
        raise UsageError("--url is missing (or --via relay: the witness through the relay)")
    if via == VIA_RELAY and cfg.relay is None:
        raise UsageError("this home joined no relay (bridge relay join URL --creds FILE first)")
    src = Path(identity_file)
    raw, ident = read_checked_identity(src, fingerprint)
    if ident.party == cfg.party or ident.party in cfg.peers:
        raise UsageError(f"{src} is the identity of {ident.party!r}, a party of this exchange; "
                         "a witness is a third party")
    old = cfg.witnesses.get(ident.party)
    witness = WitnessConfig(
        name=ident.party, url=check_peer_url(url) if url is not None else None, via=via,
        fingerprint=ident.fingerprint,
        interval_seconds=interval_seconds if interval_seconds is not None
        else (old.interval_seconds if old else 5.0))
    home.witnesses_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(home.witnesses_dir / f"{ident.party}.pub", raw, replace=True)
    home.write_config(replace(cfg, witnesses={**cfg.witnesses, ident.party: witness}))
    return witness


def pinned_witnesses(home: Home) -> dict[str, PublicIdentity]:
    """Each pinned witness's identity, checked against its pin; refused whole if one fails."""
    out = {}
    for name, pinned in home.config().witnesses.items():
        ident = load_public(home.witnesses_dir / f"{name}.pub")
        if normalise_fingerprint(ident.fingerprint) != normalise_fingerprint(pinned.fingerprint) \
                or ident.party != name:
            raise UsageError(f"witness {name}: identity file does not match its pin")
        out[name] = ident
    return out


__all__ = ["pin_witness", "pinned_witnesses"]
