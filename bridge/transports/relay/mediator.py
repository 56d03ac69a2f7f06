"""The mediator's home: the relay's configuration (``relay.toml``), typed and validated like
``bridge.toml`` (bridge/home/config.py), and the files the relay keeps.

    M/relay.toml                 the relay's configuration: limits, parties, pairs
    M/creds/PARTY.creds          each party's credentials (mode 0600): what the mediator hands it
    M/creds/WITNESS.creds        a witness's credentials (relay add-witness): bridge witness run
    M/creds/mediator-admin.creds the mediator's own (full rights: relay run, relay status)
    M/data/                      the JetStream store (file storage)
    M/nats-server.conf           the server's configuration, written from relay.toml at each start
    M/tls/cert.pem, key.pem      the server's TLS certificate and key (relay init --tls)
    M/logs/nats-server.log       the server's log
    M/run/                       the running server's ports file
    M/relay.state.json           the running relay: its pid, the server's pid, port and URL

Folders are 0700 and files 0600. Only public nkeys are in relay.toml (the server checks a
signature of its nonce); each seed is only in its credential file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import tomli_w
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from bridge.core.errors import BridgeError, InputError, UsageError
from bridge.core.printable import QUOTED_CHARS, said
from bridge.home.addresses import parse_listen
from bridge.home.config import Listen, Number, _as_value_error
from bridge.home.config_problems import listed
from bridge.home.files import write_file
from bridge.home.tls import TlsFiles, create_certificate
from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import UserKey, check_public

CONFIG_NAME = "relay.toml"
DEFAULT_LISTEN = "127.0.0.1:4222"
DAY = 86400.0

Party = Annotated[StrictStr, AfterValidator(_as_value_error(binding.party_token))]
PublicNkey = Annotated[StrictStr, AfterValidator(_as_value_error(check_public))]


def _table(title: str) -> ConfigDict:
    return ConfigDict(extra="forbid", title=title)


@dataclass(frozen=True, kw_only=True, config=_table("[relay]"))
class RelaySettings:
    """[relay]: where the server listens and the limits of each party's stream (RELAY binding,
    PROTOCOL.md)."""

    listen: Listen = Field(
        default=DEFAULT_LISTEN,
        description="HOST:PORT where the NATS server listens for the parties (port 0: a free "
                    "port chosen at the first start of relay run and kept for its restarts).")
    admin_nkey: PublicNkey = Field(
        description="The public user nkey of the mediator's admin user "
                    "(creds/mediator-admin.creds).")
    # Longer than any retry horizon: a retry of the same bytes inside it is stored once; one
    # after it is caught by the link rules anyway (PROTOCOL §8.2).
    duplicate_window: Number = Field(
        default=DAY, ge=1, le=30 * DAY,
        description="Seconds within which a second publish of the same bytes is dropped.")
    max_age: Number = Field(
        default=30 * DAY, ge=60, le=3650 * DAY,
        description="Seconds a message waits for its recipient before the broker drops it "
                    "(the sender's outbox still holds it).")
    max_stream_bytes: StrictInt = Field(
        default=1 << 30, ge=1 << 20,
        description="Bytes each party's stream may hold; a full stream refuses new messages.")
    max_message_bytes: StrictInt = Field(
        default=8 << 20, ge=64 << 10, le=64 << 20,
        description="The largest envelope or answer, in bytes (headers come on top).")
    ack_wait: Number = Field(
        default=60.0, ge=1, le=3600,
        description="Seconds before a message pulled and not acked is delivered again.")
    max_connections: StrictInt = Field(
        default=1024, ge=1, le=1_000_000, description="Client connections at once.")
    tls_cert: StrictStr | None = Field(
        default=None,
        description="TLS certificate (PEM; relative to the relay home) the server presents: "
                    "with it every party connects with tls://, pinning it or its CA.")
    tls_key: StrictStr | None = Field(
        default=None, description="The certificate's private key (PEM, mode 0600).")

    @model_validator(mode="after")
    def _stream_holds_a_message(self) -> RelaySettings:
        if self.max_stream_bytes < self.max_message_bytes + binding.HEADER_ALLOWANCE:
            raise ValueError("max_stream_bytes must hold at least one message of "
                             "max_message_bytes")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def max_payload(self) -> int:
        return self.max_message_bytes + binding.HEADER_ALLOWANCE


@dataclass(frozen=True, kw_only=True, config=_table("[parties.NAME]"))
class PartyEntry:
    nkey: PublicNkey = Field(description="The party's public user nkey (its seed is only in "
                                         "creds/NAME.creds).")
    peers: list[Party] = Field(default_factory=list,
                               description="The parties it exchanges with (both ways).")


@dataclass(frozen=True, kw_only=True, config=_table("[witnesses.NAME]"))
class WitnessEntry:
    nkey: PublicNkey = Field(description="The witness's public user nkey (its seed is only in "
                                         "creds/NAME.creds); every party may send it "
                                         "checkpoints (PROTOCOL.md §13.8).")


@dataclass(frozen=True, kw_only=True, config=_table("relay.toml"))
class RelayConfig:
    relay: RelaySettings
    parties: dict[Party, PartyEntry] = Field(default_factory=dict)
    witnesses: dict[Party, WitnessEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pairs_are_mutual(self) -> RelayConfig:
        keys = [self.relay.admin_nkey, *(p.nkey for p in self.parties.values()),
                *(w.nkey for w in self.witnesses.values())]
        if len(set(keys)) != len(keys):
            raise ValueError("two users share one nkey")
        both = sorted(set(self.parties) & set(self.witnesses))
        if both:  # one credential file per name: creds/NAME.creds
            raise ValueError(f"{both[0]!r} is both a party and a witness")
        for name, entry in self.parties.items():
            for peer in entry.peers:
                if peer == name:
                    raise ValueError(f"party {name!r} is paired with itself")
                if peer not in self.parties:
                    raise ValueError(f"party {name!r} is paired with {peer!r}, who is no party")
                if name not in self.parties[peer].peers:
                    raise ValueError(f"party {name!r} is paired with {peer!r} but not "
                                     f"{peer!r} with {name!r}")
        return self

    def pairs(self) -> list[tuple[str, str]]:
        """Each pair once, in name order."""
        return sorted({(min(a, b), max(a, b)) for a, e in self.parties.items()
                       for b in e.peers})

    def permissions(self, party: str) -> binding.Permissions:
        return binding.party_permissions(party, self.parties[party].peers, self.witnesses)

    def to_toml(self) -> str:
        relay = {k: v for k, v in dataclasses.asdict(self.relay).items() if v is not None}
        head = "# The mediator's relay: a NATS JetStream server for Bridge parties.\n"
        parties = {name: {"nkey": p.nkey, "peers": sorted(p.peers)}
                   for name, p in sorted(self.parties.items())}
        body = tomli_w.dumps({"relay": relay})
        if parties:
            body += "\n" + tomli_w.dumps({"parties": parties})
        if self.witnesses:
            body += "\n" + tomli_w.dumps({"witnesses": {
                name: {"nkey": w.nkey} for name, w in sorted(self.witnesses.items())}})
        return head + body


def with_party(config: RelayConfig, name: str, nkey: str,
               peers: Iterable[str] | None) -> RelayConfig:
    """``config`` with party ``name`` added, paired with ``peers`` (every existing party when
    None), and each of them with it."""
    binding.party_token(name)
    if name in config.parties:
        raise UsageError(f"party {name!r} is already on this relay")
    if name in config.witnesses:
        raise UsageError(f"{name!r} is a witness on this relay; a party needs another name")
    chosen = sorted(set(config.parties if peers is None else peers))
    unknown = [p for p in chosen if p not in config.parties]
    if unknown:
        raise InputError(f"no party {unknown[0]!r} on this relay (relay add-party it first)",
                         field="peer")
    parties = {n: (dataclasses.replace(e, peers=sorted({*e.peers, name})) if n in chosen else e)
               for n, e in config.parties.items()}
    parties[name] = PartyEntry(nkey=nkey, peers=chosen)
    return RelayConfig(relay=config.relay, parties=parties, witnesses=config.witnesses)


_FILE = TypeAdapter(RelayConfig)


def read_config(data: object, source: str) -> RelayConfig:
    """``data`` (parsed TOML) as a relay configuration; ``UsageError`` naming every problem
    by where it stands in the file."""
    try:
        return _FILE.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # Names and values from the file, cut: a 64 KiB key makes no 64 KiB error.
            where = ".".join(said(part, QUOTED_CHARS) for part in error["loc"]) or "relay.toml"
            message = error["msg"].removeprefix("Value error, ").replace("Input should be",
                                                                         "must be")
            if error["type"] == "unexpected_keyword_argument":
                problems.append(f"{where} is not a known key")
            elif message.startswith("must be"):
                problems.append(f"{where} {message}, "
                                f"not {said(repr(error['input']), QUOTED_CHARS)}")
            else:
                problems.append(f"{where}: {message}")
        raise UsageError(f"{source}: invalid relay configuration:{listed(problems)}") from None


class MediatorHome:
    """The mediator's home folder (the layout in this module's docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def creds_dir(self) -> Path:
        return self.path / "creds"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def run_dir(self) -> Path:
        """Where the running server writes its ports file."""
        return self.path / "run"

    @property
    def server_config_path(self) -> Path:
        return self.path / "nats-server.conf"

    @property
    def state_path(self) -> Path:
        return self.path / "relay.state.json"

    @property
    def tls_dir(self) -> Path:
        return self.path / "tls"

    def resolve(self, path: str) -> Path:
        """A path of relay.toml: relative ones are in the relay home."""
        return self.path / path

    @property
    def admin_creds(self) -> Path:
        return self.creds_path(binding.ADMIN_NAME)

    def creds_path(self, name: str) -> Path:
        return self.creds_dir / f"{name}.creds"

    def exists(self) -> bool:
        return self.config_path.exists()

    def config(self) -> RelayConfig:
        try:
            raw = self.config_path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"{self.path} is no relay home (no {CONFIG_NAME}; create one with "
                             "bridge --home DIR relay init --party A --party B)") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{self.config_path}: not valid TOML: {exc}") from None
        return read_config(data, str(self.config_path))

    def write_config(self, config: RelayConfig) -> None:
        write_file(self.config_path, config.to_toml(), replace=True)

    def make_folders(self) -> None:
        for folder in (self.path, self.creds_dir, self.data_dir, self.logs_dir, self.run_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    def write_creds(self, name: str, key: UserKey) -> Path:
        path = self.creds_path(name)
        write_file(path, key.seed_block())
        return path


def init_home(home: MediatorHome, parties: Iterable[str], listen: str, *,
              tls: bool = False, witnesses: Iterable[str] = ()) -> RelayConfig:
    """Create the relay home: the admin's and each party's credentials, every party paired
    with every other, and relay.toml; with ``tls`` a self-signed certificate (tls/cert.pem,
    which the parties pin) that the server presents. Refuses a folder that already holds a
    relay."""
    names, witnessed = list(parties), list(witnesses)
    if len(set(names)) != len(names):
        raise InputError("a party is named twice", field="party")
    if len(set(witnessed)) != len(witnessed) or set(names) & set(witnessed):
        raise InputError("a witness is named twice, or as a party", field="witness")
    for name in names:
        binding.party_token(name)
    if home.exists():
        raise UsageError(f"{home.config_path} already exists; this folder is a relay home")
    parse_listen(listen)
    home.make_folders()
    admin = UserKey.generate()
    settings = RelaySettings(listen=listen, admin_nkey=admin.public)
    if tls:
        create_certificate(home.tls_dir, "relay")
        files = TlsFiles.of(home.tls_dir)
        settings = dataclasses.replace(
            settings, tls_cert=str(files.cert.relative_to(home.path)),
            tls_key=str(files.key.relative_to(home.path)))
    config = RelayConfig(relay=settings)
    home.write_creds(binding.ADMIN_NAME, admin)
    for name in names:
        config = _add(home, config, name, None)
    for name in witnessed:
        config = _add_witness(home, config, name)
    home.write_config(config)
    return config


def _add(home: MediatorHome, config: RelayConfig, name: str,
         peers: Iterable[str] | None) -> RelayConfig:
    key = UserKey.generate()
    updated = with_party(config, name, key.public, peers)  # checks before any file is written
    home.write_creds(name, key)
    return updated


def add_party(home: MediatorHome, name: str, peers: Iterable[str] | None) -> RelayConfig:
    """Add one party (its credentials, its pairs) to an existing relay home."""
    return _written(home, name, _add(home, home.config(), name, peers))


def _written(home: MediatorHome, name: str, updated: RelayConfig) -> RelayConfig:
    """``updated`` written to relay.toml; if it cannot be, the credential file just made for
    ``name`` goes too (a user the server does not know)."""
    try:
        home.write_config(updated)
    except BridgeError:
        home.creds_path(name).unlink(missing_ok=True)
        raise
    return updated


def _add_witness(home: MediatorHome, config: RelayConfig, name: str) -> RelayConfig:
    binding.party_token(name)
    if name in config.witnesses:
        raise UsageError(f"witness {name!r} is already on this relay")
    if name in config.parties:
        raise UsageError(f"{name!r} is a party of this relay; a witness is a third party")
    key = UserKey.generate()
    updated = RelayConfig(relay=config.relay, parties=config.parties,
                          witnesses={**config.witnesses, name: WitnessEntry(nkey=key.public)})
    home.write_creds(name, key)
    return updated


def add_witness(home: MediatorHome, name: str) -> RelayConfig:
    """Add a witness (its credential file) that every party of this relay may reach."""
    return _written(home, name, _add_witness(home, home.config(), name))


__all__ = ["CONFIG_NAME", "DEFAULT_LISTEN", "MediatorHome", "PartyEntry", "RelayConfig",
           "RelaySettings", "WitnessEntry", "add_party", "add_witness", "init_home",
           "read_config", "with_party"]
