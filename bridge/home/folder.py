"""A Bridge home folder: its layout, its configuration file, its keys and its pinned peers.

    HOME/bridge.toml        configuration (party, listen address, delivery, limits, peers)
    HOME/keys/PARTY.key     private keys, mode 0600
    HOME/keys/PARTY.pub     public identity file
    HOME/keys/peers/P.pub   pinned peers' identity files
    HOME/tls/cert.pem, key.pem  the peer endpoint's TLS certificate and key (bridge/home/tls.py)
    HOME/data/bridge.db     the SQLite store
    HOME/bridge.sock        the local API socket
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.core.crypto.identity import (
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    check_party,
)
from bridge.core.errors import UsageError
from bridge.home.files import write_file
from bridge.home.key_files import load_private, load_public, write_private

CONFIG_NAME = "bridge.toml"
DEFAULT_LISTEN = "127.0.0.1:7443"


def _toml_str(text: str) -> str:
    """A TOML basic string: JSON's string escapes are all valid TOML escapes (TOML 1.0
    \u00a7 Strings), so a quote or a newline in a value can never end the string."""
    return json.dumps(text)


def default_home() -> Path:
    return Path(os.environ.get("BRIDGE_HOME") or ".bridge")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if (not sep or not host or not (port.isascii() and port.isdigit())
            or not 0 < int(port) < 65536):
        raise UsageError(f"listen address must be HOST:PORT, got {text!r}")
    return host, int(port)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """Retry policy for the delivery loop (exponential backoff with full jitter, capped)."""

    initial_backoff: float = 0.2
    max_backoff: float = 30.0
    request_timeout: float = 30.0
    chunk_items: int = 5000  # entries per envelope for large documents

    def __post_init__(self) -> None:
        # A zero or negative backoff is a retry loop against the peer (and an fsync'd
        # transaction each time); an hour between attempts is the most that still delivers.
        if not 0.01 <= self.initial_backoff <= 3600:
            raise ValueError("[delivery] initial_backoff must be between 0.01 and 3600 seconds")
        if not self.initial_backoff <= self.max_backoff <= 86400:
            raise ValueError("[delivery] max_backoff must be between initial_backoff and 86400 "
                             "seconds")
        if not 0 < self.request_timeout <= 3600:
            raise ValueError("[delivery] request_timeout must be more than 0 and at most 3600 "
                             "seconds")
        if type(self.chunk_items) is not int or not 1 <= self.chunk_items <= 1_000_000:
            raise ValueError("[delivery] chunk_items must be a whole number from 1 to 1000000")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """[limits]: what the peer endpoint accepts from the network (README, "Security limits").
    ``max_body_bytes`` is kept on ``Config`` (the local API uses it too) but written here."""

    max_connections: int = 64  # open connections to the peer endpoint at once
    requests_per_second: float = 50.0  # envelopes a second per sender (token bucket) ...
    burst: int = 200  # ... with this many saved up
    body_read_seconds: float = 60.0  # a request body must arrive whole within this
    idle_seconds: float = 30.0  # a connection with no request in progress is closed after
    max_header_bytes: int = 8190  # the request line, and each header line
    max_headers: int = 32
    refusal_records_per_minute: int = 600  # refusal rows a minute; the rest only counted

    def __post_init__(self) -> None:
        for name in ("max_connections", "burst", "max_header_bytes", "max_headers",
                     "refusal_records_per_minute"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"[limits] {name} must be a whole number >= 1")
        for name in ("requests_per_second", "body_read_seconds", "idle_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"[limits] {name} must be a positive number")

    @classmethod
    def from_toml(cls, d: dict[str, Any]) -> Limits:
        ints = ("max_connections", "burst", "max_header_bytes", "max_headers",
                "refusal_records_per_minute")
        floats = ("requests_per_second", "body_read_seconds", "idle_seconds")
        unknown = set(d) - set(ints) - set(floats) - {"max_body_bytes"}
        if unknown:
            raise ValueError(f"[limits] has unknown keys: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {k: int(d[k]) for k in ints if k in d}
        values.update({k: float(d[k]) for k in floats if k in d})
        return cls(**values)

    def toml_lines(self, max_body_bytes: int) -> list[str]:
        return [
            "# What the peer endpoint accepts (README, \"Security limits\").",
            "[limits]",
            f"max_body_bytes = {max_body_bytes}",
            f"max_connections = {self.max_connections}",
            f"requests_per_second = {self.requests_per_second}",
            f"burst = {self.burst}",
            f"body_read_seconds = {self.body_read_seconds}",
            f"idle_seconds = {self.idle_seconds}",
            f"max_header_bytes = {self.max_header_bytes}",
            f"max_headers = {self.max_headers}",
            f"refusal_records_per_minute = {self.refusal_records_per_minute}",
        ]


@dataclass(frozen=True, kw_only=True)
class PeerConfig:
    name: str
    url: str
    fingerprint: str
    # SHA-256 of the peer endpoint's TLS certificate (64 lower-case hex digits) for https://
    tls_fingerprint: str | None = None


@dataclass(frozen=True, kw_only=True)
class Config:
    party: str
    listen: str
    delivery: Delivery = field(default_factory=Delivery)
    peers: dict[str, PeerConfig] = field(default_factory=dict)
    max_body_bytes: int = 64 * 1024 * 1024
    deadline_check_seconds: float = 5.0
    limits: Limits = field(default_factory=Limits)
    tls_enabled: bool = False  # [tls] enabled: serve the peer endpoint over TLS
    # [local] allowed_uids: who may use the local API; None means this uid and root.
    allowed_uids: tuple[int, ...] | None = None

    @classmethod
    def from_toml(cls, data: dict[str, Any], source: str) -> Config:
        from bridge.home.config_schema import check_toml

        check_toml(data, source)  # every section, key and type; the ranges below
        try:
            bridge = data["bridge"]
            party = check_party(bridge["party"])
            listen = str(bridge.get("listen", DEFAULT_LISTEN))
            parse_listen(listen)
            d = data.get("delivery", {})
            delivery = Delivery(
                initial_backoff=float(d.get("initial_backoff", Delivery.initial_backoff)),
                max_backoff=float(d.get("max_backoff", Delivery.max_backoff)),
                request_timeout=float(d.get("request_timeout", Delivery.request_timeout)),
                chunk_items=int(d.get("chunk_items", Delivery.chunk_items)),
            )
            peers = {
                name: PeerConfig(name=check_party(name), url=str(p["url"]),
                                 fingerprint=str(p["fingerprint"]),
                                 tls_fingerprint=(str(p["tls_fingerprint"])
                                                  if p.get("tls_fingerprint") else None))
                for name, p in data.get("peers", {}).items()
            }
            raw_limits = data.get("limits", {})
            limits = Limits.from_toml(raw_limits)
            # [limits] max_body_bytes; [bridge] max_body_bytes in files written before [limits].
            max_body = int(raw_limits.get("max_body_bytes",
                                          bridge.get("max_body_bytes", 64 * 1024 * 1024)))
            if max_body < 1:
                raise ValueError("max_body_bytes must be at least 1")
            deadline_check = float(bridge.get("deadline_check_seconds", 5.0))
            if not 0.05 <= deadline_check <= 3600:
                raise ValueError("[bridge] deadline_check_seconds must be between 0.05 and "
                                 "3600")
            tls_enabled = data.get("tls", {}).get("enabled", False)
            if not isinstance(tls_enabled, bool):
                raise ValueError("[tls] enabled must be true or false")
            uids = data.get("local", {}).get("allowed_uids")
            if uids is not None and (not isinstance(uids, list) or any(
                    type(u) is not int or u < 0 for u in uids)):
                raise ValueError("[local] allowed_uids must be a list of user ids")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"{source}: invalid configuration ({exc})") from exc
        return cls(party=party, listen=listen, delivery=delivery, peers=peers,
                   max_body_bytes=max_body, deadline_check_seconds=deadline_check,
                   limits=limits,
                   tls_enabled=tls_enabled,
                   allowed_uids=tuple(uids) if uids is not None else None)

    def to_toml(self) -> str:
        d = self.delivery
        lines = [
            "# Bridge configuration. Times are in seconds.",
            "[bridge]",
            f"party = {_toml_str(self.party)}",
            f"listen = {_toml_str(self.listen)}",
            f"deadline_check_seconds = {self.deadline_check_seconds}",
            "",
            "[delivery]",
            f"initial_backoff = {d.initial_backoff}",
            f"max_backoff = {d.max_backoff}",
            f"request_timeout = {d.request_timeout}",
            f"chunk_items = {d.chunk_items}",
            "",
            *self.limits.toml_lines(self.max_body_bytes),
            "",
            "# TLS on the peer endpoint (certificate in tls/; peers pin its SHA-256).",
            "[tls]",
            f"enabled = {'true' if self.tls_enabled else 'false'}",
        ]
        lines += ["", "# Who may use the local API (default: the daemon's own user and root).",
                  "[local]"]
        if self.allowed_uids is None:
            lines.append("# allowed_uids = [1001, 0]")
        else:
            lines.append(f"allowed_uids = [{', '.join(map(str, self.allowed_uids))}]")
        for p in self.peers.values():
            lines += ["", f"[peers.{p.name}]", f"url = {_toml_str(p.url)}",
                      f"fingerprint = {_toml_str(p.fingerprint)}"]
            if p.tls_fingerprint:
                lines.append(f"tls_fingerprint = {_toml_str(p.tls_fingerprint)}")
        return "\n".join(lines) + "\n"


class Home:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def peers_dir(self) -> Path:
        return self.keys_dir / "peers"

    @property
    def db_path(self) -> Path:
        return self.path / "data" / "bridge.db"

    @property
    def socket_path(self) -> Path:
        return self.path / "bridge.sock"

    @property
    def tls_dir(self) -> Path:
        return self.path / "tls"

    def private_key_path(self, party: str) -> Path:
        return self.keys_dir / f"{party}.key"

    def public_key_path(self, party: str) -> Path:
        return self.keys_dir / f"{party}.pub"

    def config(self) -> Config:
        try:
            raw = self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise UsageError(f"no Bridge home at {self.path} (no {CONFIG_NAME}); "
                             f"create one with: bridge --home {self.path} init --party NAME"
                             ) from exc
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{self.config_path}: not valid TOML ({exc})") from exc
        return Config.from_toml(data, str(self.config_path))

    def write_config(self, config: Config) -> None:
        write_file(self.config_path, config.to_toml(), replace=True)

    def init(self, party: str, *, listen: str = DEFAULT_LISTEN,
             passphrase: bytes | None = None, tls: bool = False) -> PrivateIdentity:
        """Create the home: folders (0700), keys, identity file, configuration, and with ``tls``
        the peer endpoint's certificate. Never overwrites."""
        check_party(party)
        parse_listen(listen)
        if self.config_path.exists() or self.private_key_path(party).exists():
            raise UsageError(f"{self.path} already holds a Bridge identity; refusing to overwrite "
                             "it (move it away first if you really mean to start over)")
        for folder in (self.path, self.keys_dir, self.peers_dir, self.db_path.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        identity = PrivateIdentity.generate(party, created=int(time.time() * 1000))
        write_private(self.private_key_path(party), identity, passphrase=passphrase)
        write_file(self.public_key_path(party), identity.public.dumps(), replace=True)
        if tls:
            from bridge.home.tls import create_certificate

            create_certificate(self.tls_dir, party)
        self.write_config(Config(party=party, listen=listen, tls_enabled=tls))
        return identity

    def identity(self, passphrase: bytes | None = None) -> PrivateIdentity:
        cfg = self.config()
        return load_private(self.private_key_path(cfg.party), passphrase=passphrase)

    def public_identity(self) -> PublicIdentity:
        return load_public(self.public_key_path(self.config().party))

    def peer_identity(self, name: str) -> PublicIdentity:
        return load_public(self.peers_dir / f"{name}.pub")

    def keyring(self) -> Keyring:
        """Oneself and every pinned peer, with every earlier key of each and when it was
        retired or revoked (``KeyStore.keyring``): a keyring without the history fails
        whatever was signed before a rotation (``unknown_key``)."""
        from bridge.home.keystore import KeyStore  # the key store is built on the home

        return KeyStore(self).keyring()
