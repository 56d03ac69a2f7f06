"""Pinning peers in a home: their identity files under ``keys/peers/`` and their entries in
``bridge.toml``.

Pinning is trust on first use made explicit: the operator gives the peer's identity file *and* the
fingerprint they read out of band (over the phone, on paper). The two must agree, or nothing is
written. Re-pinning the same key only updates the URL; pinning a different key for a known peer
is a key change and needs ``replace=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from bridge.core.crypto.identity import PublicIdentity, constant_time_equal, normalise_fingerprint
from bridge.core.errors import InputError, UsageError
from bridge.home.addresses import check_peer_url
from bridge.home.config import VIA_HTTP, VIA_RELAY, Config, PeerConfig, Via
from bridge.home.files import write_file
from bridge.home.folder import Home
from bridge.home.tls import check_peer_transport, format_tls_fingerprint, normalise_tls_fingerprint


class FingerprintMismatch(UsageError):
    """The identity file's fingerprint is not the one the operator was told."""

    code = "fingerprint_mismatch"

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"fingerprint mismatch for {path}:\n"
            f"  you gave:          {expected}\n"
            f"  the file's key is: {actual}\n"
            "Nothing was pinned. Check with the peer, out of band, which key is theirs."
        )
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class PinResult:
    peer: PeerConfig
    identity_file: Path
    action: str  # "added" | "updated" | "unchanged" | "replaced"


def _same_key(a: PublicIdentity, b: PublicIdentity) -> bool:
    return constant_time_equal(a.key_id, b.key_id)


def pin_peer(home: Home, identity_file: str | os.PathLike[str], *, url: str | None,
             fingerprint: str, replace_key: bool = False, tls_fingerprint: str | None = None,
             drop_tls: bool = False, via: Via = VIA_HTTP) -> PinResult:
    """Pin the peer whose identity file is ``identity_file``. Checks everything before writing
    anything: a refusal leaves the home as it was.

    ``tls_fingerprint`` pins the SHA-256 of the peer endpoint's TLS certificate, for an
    https:// URL. Left out, a TLS pin the peer already has is kept while its URL stays https://.
    Changing a TLS pin is a key change like any other: it needs ``replace_key``; dropping
    it (an http:// URL for a peer pinned over TLS) is a downgrade: it needs ``drop_tls``.

    ``via`` other than ``http`` (the mediator's relay, the carrier) pins no URL and no TLS
    certificate: the envelopes are sealed end to end whatever carries them."""
    cfg = home.config()
    src = Path(identity_file)
    raw, ident = _checked_identity(src, fingerprint, cfg)
    clean_url = _checked_route(cfg, via, url, tls_fingerprint)
    pinned = _Pinned.of(home, cfg, ident)
    tls_pin = (_checked_tls_pin(ident.party, clean_url, tls_fingerprint, pinned.tls,
                                replace_key=replace_key, drop_tls=drop_tls)
               if clean_url is not None else None)
    if not pinned.same_key and not replace_key:
        raise UsageError(
            f"peer {ident.party!r} is already pinned with another key:\n"
            f"  pinned:   {pinned.fingerprint}\n"
            f"  new file: {ident.fingerprint}\n"
            "A key change must be confirmed with the peer out of band; then run again with "
            "--replace."
        )
    peer = PeerConfig(name=ident.party, url=clean_url, fingerprint=ident.fingerprint,
                      tls_fingerprint=tls_pin, via=via)
    action = pinned.action_for(peer)
    dest = home.peers_dir / f"{ident.party}.pub"
    home.peers_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if pinned.identity is None or not pinned.same_key:
        write_file(dest, raw, replace=True)
    if action != "unchanged":
        home.write_config(replace(cfg, peers={**cfg.peers, ident.party: peer}))
    return PinResult(peer=peer, identity_file=dest, action=action)


def _checked_route(cfg: Config, via: Via, url: str | None,
                   tls_fingerprint: str | None) -> str | None:
    """The peer's URL for ``via = "http"`` (required); none for the other ways, and the relay
    only once this home has joined one."""
    if via == VIA_HTTP:
        if url is None:
            raise InputError("a peer reached over http needs --url (or pin it --via relay or "
                             "--via carry)", field="url")
        return check_peer_url(url)
    if url is not None or tls_fingerprint is not None:
        raise InputError(f"a peer reached via {via} has no URL and no TLS certificate: leave "
                         "out --url and --tls-fingerprint", field="url")
    if via == VIA_RELAY and cfg.relay is None:
        raise UsageError("this home has joined no relay: first run bridge relay join "
                         "nats://HOST:PORT --creds FILE (with the file the mediator gave you)")
    return None


def _checked_identity(src: Path, fingerprint: str, cfg: Config) -> tuple[bytes, PublicIdentity]:
    raw, ident = read_checked_identity(src, fingerprint)
    if ident.party == cfg.party:
        raise UsageError(f"{src} is the identity of party {ident.party!r}, which is this home's "
                         "own party; a peer must be another party")
    return raw, ident


def read_checked_identity(src: Path, fingerprint: str) -> tuple[bytes, PublicIdentity]:
    """The identity file's bytes, read once (what is checked is what is copied), checked
    against the fingerprint the operator was given out of band (a peer's or a witness's)."""
    try:
        raw = src.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read identity file {src}: {exc.strerror}") from exc
    ident = PublicIdentity.loads(raw, source=str(src))
    given = normalise_fingerprint(fingerprint)
    if not given:
        raise InputError("the fingerprint is empty", field="fingerprint")
    if given != normalise_fingerprint(ident.fingerprint):
        raise FingerprintMismatch(src, _grouped(given), ident.fingerprint)
    return raw, ident


@dataclass(frozen=True)
class _Pinned:
    """What the home pins for a peer now: its config entry, its identity file, and whether the
    new identity has the same key."""

    config: PeerConfig | None
    identity: PublicIdentity | None
    same_key: bool
    fingerprint: str
    tls: str | None

    @classmethod
    def of(cls, home: Home, cfg: Config, ident: PublicIdentity) -> _Pinned:
        dest = home.peers_dir / f"{ident.party}.pub"
        old_cfg = cfg.peers.get(ident.party)
        old_ident = (PublicIdentity.loads(dest.read_bytes(), source=str(dest))
                     if dest.exists() else None)
        if old_ident is not None:
            same, old_fp = _same_key(old_ident, ident), old_ident.fingerprint
        elif old_cfg is not None:
            same = (normalise_fingerprint(old_cfg.fingerprint)
                    == normalise_fingerprint(ident.fingerprint))
            old_fp = old_cfg.fingerprint
        else:
            same, old_fp = True, ""
        old_tls = (normalise_tls_fingerprint(old_cfg.tls_fingerprint)
                   if old_cfg is not None and old_cfg.tls_fingerprint else None)
        return cls(old_cfg, old_ident, same, old_fp, old_tls)

    def action_for(self, peer: PeerConfig) -> str:
        if self.identity is None and self.config is None:
            return "added"
        if not self.same_key or (self.tls and peer.tls_fingerprint != self.tls):
            return "replaced"
        if self.config == peer and self.identity is not None:
            return "unchanged"
        return "updated"


def _checked_tls_pin(name: str, url: str, given: str | None, old_tls: str | None, *,
                     replace_key: bool, drop_tls: bool) -> str | None:
    """The TLS pin to keep: the one given, else the one pinned while the URL stays https://.
    Changing it needs ``replace_key``; losing it (a downgrade to http://) needs ``drop_tls``."""
    tls_pin = normalise_tls_fingerprint(given) if given else None
    if tls_pin is None and old_tls and url.startswith("https://"):
        tls_pin = old_tls
    if old_tls and not url.startswith("https://") and not drop_tls:
        # Never a silent downgrade: everything after this would travel in clear text, to an
        # endpoint nobody has authenticated.
        raise UsageError(
            f"peer {name!r} is pinned over TLS ({format_tls_fingerprint(old_tls)}); "
            f"{url} would send to it without TLS. If that is really meant (agreed with "
            "the peer), run again with --drop-tls.")
    if tls_pin and old_tls and tls_pin != old_tls and not replace_key:
        raise UsageError(
            f"peer {name!r} is already pinned with another TLS certificate:\n"
            f"  pinned: {format_tls_fingerprint(old_tls)}\n"
            f"  given:  {format_tls_fingerprint(tls_pin)}\n"
            "A certificate change must be confirmed with the peer out of band; then run again "
            "with --replace.")
    if tls_pin:
        check_peer_transport(name, url, tls_pin)  # a pin needs https://
    return tls_pin


def pinned_identities(home: Home, cfg: Config) -> dict[str, PublicIdentity]:
    """Each pinned peer's identity file, checked against its pin (fingerprint, party name and
    transport): what the daemon trusts, refused whole if any peer does not hold."""
    peers = {}
    for name, pinned in cfg.peers.items():
        ident = home.peer_identity(name)
        if normalise_fingerprint(ident.fingerprint) != normalise_fingerprint(pinned.fingerprint):
            raise UsageError(f"peer {name}: identity file fingerprint {ident.fingerprint} "
                             f"differs from the pinned {pinned.fingerprint}")
        if ident.party != name:
            raise UsageError(f"peer {name}: identity file is for party {ident.party}")
        if pinned.url is not None:  # the relay and the carrier pin no endpoint
            check_peer_transport(name, pinned.url, pinned.tls_fingerprint)
        peers[name] = ident
    return peers


def unpin_peer(home: Home, name: str) -> PeerConfig:
    """Take ``name`` out of ``bridge.toml``: no longer trusted, delivered to or accepted from.
    Its identity file stays under ``keys/peers/`` (receipts it signed still verify offline,
    and pinning another key under its name later is a key change, needing ``--replace``)."""
    cfg = home.config()
    if name not in cfg.peers:
        raise InputError(f"no pinned peer named {name!r}", field="name", code="unknown_peer")
    peers = {k: v for k, v in cfg.peers.items() if k != name}
    home.write_config(replace(cfg, peers=peers))
    return cfg.peers[name]


def list_peers(home: Home) -> list[PeerConfig]:
    return sorted(home.config().peers.values(), key=lambda p: p.name)


def _grouped(normalised: str) -> str:
    """A normalised fingerprint in groups of four, as people read it."""
    return " ".join(normalised[i : i + 4] for i in range(0, len(normalised), 4))


__all__ = ["FingerprintMismatch", "PinResult", "check_peer_url", "list_peers", "pin_peer",
           "pinned_identities", "read_checked_identity", "unpin_peer"]
