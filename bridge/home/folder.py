"""A Bridge home folder: its layout, its configuration file, its keys and its pinned peers.

    HOME/bridge.toml        configuration (party, listen address, delivery, limits, peers)
    HOME/keys/PARTY.key     private keys, mode 0600
    HOME/keys/PARTY.pub     public identity file
    HOME/keys/peers/P.pub   pinned peers' identity files
    HOME/tls/cert.pem, key.pem  the peer endpoint's TLS certificate and key (bridge/home/tls.py)
    HOME/data/bridge.db     the SQLite store
    HOME/bridge.sock        the local API socket
    HOME/peer.port          the port the running daemon's peer endpoint got (mode 0600)
    HOME/relay.creds        the credential file the mediator handed out (``bridge relay join``)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.core.errors import UsageError
from bridge.home.files import write_file

if TYPE_CHECKING:
    from bridge.core.crypto import suites
    from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
    from bridge.home.config import Config

# The configuration model (pydantic), the keys and their algorithms are imported by the methods
# that use them, not with the module: a command that only reaches the daemon through the home's
# socket (``bridge send``, ``bridge status``) needs none of them, and importing them was most
# of every such command's start.

CONFIG_NAME = "bridge.toml"
PORT_NAME = "peer.port"


def default_home() -> Path:
    return Path(os.environ.get("BRIDGE_HOME") or ".bridge")


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
    def witnesses_dir(self) -> Path:
        """The identity files of the pinned witnesses (``bridge witness pin``)."""
        return self.keys_dir / "witnesses"

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
    def port_path(self) -> Path:
        """Written by the daemon once its peer endpoint is bound (atomically, 0600): the port
        it got, which is the one to use when bridge.toml says port 0."""
        return self.path / PORT_NAME

    @property
    def relay_creds_path(self) -> Path:
        """The credential file of the mediator's relay, copied in by ``bridge relay join``."""
        return self.path / "relay.creds"

    @property
    def tls_dir(self) -> Path:
        return self.path / "tls"

    def private_key_path(self, party: str) -> Path:
        return self.keys_dir / f"{party}.key"

    def public_key_path(self, party: str) -> Path:
        return self.keys_dir / f"{party}.pub"

    def config(self) -> Config:
        import tomllib

        from bridge.home.config import Config

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

    def init(self, party: str, *, listen: str | None = None,
             passphrase: bytes | None = None, tls: bool = False,
             suite: suites.Suite | None = None) -> PrivateIdentity:
        """Create the home: folders (0700), keys of ``suite`` (suite 2, post-quantum, unless
        told), identity file, configuration, and with ``tls`` the peer endpoint's certificate.
        Never overwrites. Without ``listen`` the daemon opens no peer endpoint (its peers are
        reached through the relay or the carrier), unless ``tls`` asks for one: then it listens
        on ``DEFAULT_LISTEN``."""
        from bridge.core.crypto import suites
        from bridge.core.crypto.identity import PrivateIdentity, check_party
        from bridge.home.addresses import parse_listen
        from bridge.home.config import DEFAULT_LISTEN, Config
        from bridge.home.key_files import write_private

        check_party(party)
        if tls and listen is None:  # TLS is the peer endpoint's: asking for it asks for one
            listen = DEFAULT_LISTEN
        if listen is not None:
            parse_listen(listen)
        if self.config_path.exists() or self.private_key_path(party).exists():
            raise UsageError(f"{self.path} already holds a Bridge identity; refusing to overwrite "
                             "it (move it away first if you really mean to start over)")
        for folder in (self.path, self.keys_dir, self.peers_dir, self.db_path.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        chosen = suites.NEW_IDENTITY_SUITE if suite is None else suite
        identity = PrivateIdentity.generate(party, created=int(time.time() * 1000),
                                            suite=chosen)
        write_private(self.private_key_path(party), identity, passphrase=passphrase)
        write_file(self.public_key_path(party), identity.public.dumps(), replace=True)
        if tls:
            from bridge.home.tls import create_certificate

            create_certificate(self.tls_dir, party)
        self.write_config(Config(party=party, listen=listen, tls_enabled=tls))
        return identity

    def identity(self, passphrase: bytes | None = None) -> PrivateIdentity:
        from bridge.home.key_files import load_private

        cfg = self.config()
        return load_private(self.private_key_path(cfg.party), passphrase=passphrase)

    def public_identity(self) -> PublicIdentity:
        from bridge.home.key_files import load_public

        return load_public(self.public_key_path(self.config().party))

    def peer_identity(self, name: str) -> PublicIdentity:
        from bridge.home.key_files import load_public

        return load_public(self.peers_dir / f"{name}.pub")

    def keyring(self) -> Keyring:
        """Oneself and every pinned peer, with every earlier key of each and when it was
        retired or revoked (``KeyStore.keyring``): a keyring without the history fails
        whatever was signed before a rotation (``unknown_key``)."""
        from bridge.home.keystore import KeyStore  # the key store is built on the home

        return KeyStore(self).keyring()
