"""A witness's home folder: its key, its identity file, its state (PROTOCOL.md §13.3).

    <home>/witness.json        {"party": NAME}: which key is the witness's
    <home>/keys/NAME.key       the private key (0600), the same key file as a party's
    <home>/NAME.pub            the identity file the parties pin (``bridge witness pin``)
    <home>/witness.db          the state: logs witnessed, latest cosigned, every request
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from bridge.core.crypto.identity import PrivateIdentity, PublicIdentity, check_party
from bridge.core.errors import UsageError
from bridge.core.notes.checkpoint import witness_key_name
from bridge.core.notes.cosignature import Cosignature, cosign
from bridge.home.files import write_file
from bridge.home.key_files import load_private, load_public, read_key_file, write_private
from bridge.witness.state import WitnessState

CosignFn = Callable[[str, int], Cosignature]


class WitnessHome:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "witness.json"

    @property
    def db_path(self) -> Path:
        return self.path / "witness.db"

    def party(self) -> str:
        if not self.config_path.exists():
            raise UsageError(f"{self.path} is not a witness home: run `bridge --home "
                             f"{self.path} witness init --party NAME` first")
        data = json.loads(read_key_file(self.config_path, "witness configuration"))
        return check_party(str(data.get("party")))

    def key_path(self, party: str) -> Path:
        return self.path / "keys" / f"{party}.key"

    def public_path(self, party: str) -> Path:
        return self.path / f"{party}.pub"

    def init(self, party: str, *, passphrase: bytes | None = None) -> PrivateIdentity:
        """Create the witness's key and identity file; never over an existing home."""
        check_party(party)
        if self.config_path.exists():
            raise UsageError(f"{self.path} already holds a witness; refusing to overwrite it")
        for folder in (self.path, self.path / "keys"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        identity = PrivateIdentity.generate(party, created=int(time.time() * 1000))
        write_private(self.key_path(party), identity, passphrase=passphrase)
        write_file(self.public_path(party), identity.public.dumps(), replace=True)
        write_file(self.config_path, json.dumps({"party": party}) + "\n")
        WitnessState(self.db_path).close()
        return identity

    def identity(self, passphrase: bytes | None = None) -> PrivateIdentity:
        return load_private(self.key_path(self.party()), passphrase=passphrase)

    def public_identity(self) -> PublicIdentity:
        return load_public(self.public_path(self.party()))

    def state(self) -> WitnessState:
        self.party()  # a clear error before SQLite creates a file in a folder that is not one
        return WitnessState(self.db_path)


def key_name(identity: PublicIdentity) -> str:
    """The witness's cosigner name."""
    return witness_key_name(identity.party, identity.fingerprint)


def cosigner(me: PrivateIdentity) -> CosignFn:
    """The witness's one signing function: a cosignature/v1 of a checkpoint text at a time."""
    name, public = key_name(me.public), me.public.note_key

    def sign(text: str, timestamp: int) -> Cosignature:
        return cosign(text, name=name, public=public, timestamp=timestamp, sign=me.sign_note)

    return sign

__all__ = ["CosignFn", "WitnessHome", "cosigner", "key_name"]
