"""Key files over time: this party's current and retired keys, and each peer's pinned key with
the keys it used before (rotated or revoked).

    HOME/keys/PARTY.key, PARTY.pub               the current key
    HOME/keys/history/PARTY-<fp>.key, .pub       retired keys: still open envelopes that were
                                                 sealed to them before the peer learnt the new one
    HOME/keys/peers/NAME.pub                     the peer's pinned key
    HOME/keys/peers/history/NAME-<fp>.json       the peer's earlier keys, with the last sequence
                                                 number each may sign and any revocation

Every write is a whole-file replace through ``bridge.files`` (mode 0600, a fresh temporary file,
fsync, rename), so a crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import UsageError
from bridge.files import write_file
from bridge.home import Home
from bridge.identity import PrivateIdentity, PublicIdentity, load_private


def _short(identity: PublicIdentity) -> str:
    return identity.fingerprint.replace(" ", "")[:16]


def _replace(path: Path, data: str | bytes) -> None:
    """Every key file, public or private: 0600, whole-file replace (``bridge.files``)."""
    write_file(path, data, replace=True)


@dataclass(frozen=True, kw_only=True)
class PeerKey:
    """One key a peer has used. ``valid_through_seq``: the last envelope sequence number it may
    sign (None: no limit, the current key). ``revoked_since``: signatures dated at or after this
    (ms) are void."""

    identity: PublicIdentity
    current: bool
    valid_through_seq: int | None = None
    revoked_since: int | None = None
    revocation: bytes | None = None


class KeyStore:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.history = home.keys_dir / "history"
        self.peer_history = home.peers_dir / "history"

    # ------------------------------------------------------------ this party

    def own_identities(self, passphrase: bytes | None = None) -> list[PrivateIdentity]:
        """The current key first, then retired ones (newest first)."""
        current = self.home.identity(passphrase)
        retired = []
        if self.history.is_dir():
            for path in self.history.glob(f"{current.party}-*.key"):
                retired.append(load_private(path, passphrase=passphrase))
        retired.sort(key=lambda i: i.public.created, reverse=True)
        return [current, *retired]

    def staged_path(self, party: str) -> Path:
        return self.home.keys_dir / f"{party}.key.next"

    def stage_own(self, new: PrivateIdentity, passphrase: bytes | None) -> None:
        """Write the next key beside the current one; ``install_own`` makes it current."""
        path = self.staged_path(new.party)
        path.unlink(missing_ok=True)
        _replace(path, new.dumps(passphrase=passphrase))

    def staged_own(self, party: str, passphrase: bytes | None) -> PrivateIdentity | None:
        path = self.staged_path(party)
        return load_private(path, passphrase=passphrase) if path.exists() else None

    def discard_staged(self, party: str) -> None:
        self.staged_path(party).unlink(missing_ok=True)

    def install_own(self, old: PrivateIdentity, new: PrivateIdentity,
                    passphrase: bytes | None) -> None:
        """Retire ``old`` into the history and make the staged ``new`` current."""
        self.history.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = self.history / f"{old.party}-{_short(old.public)}"
        _replace(stem.with_suffix(".key"), old.dumps(passphrase=passphrase))
        _replace(stem.with_suffix(".pub"), old.public.dumps())
        _replace(self.home.public_key_path(new.party), new.public.dumps())
        staged = self.staged_path(new.party)
        if staged.exists():
            os.replace(staged, self.home.private_key_path(new.party))
        else:
            _replace(self.home.private_key_path(new.party), new.dumps(passphrase=passphrase))

    def write_revocation(self, identity: PublicIdentity, statement: bytes, *,
                         peer: bool) -> Path:
        """Keep a revocation statement as a file that ``bridge verify --keys`` accepts."""
        folder = self.peer_history if peer else self.history
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{identity.party}-{_short(identity)}.revocation"
        _replace(path, statement)
        return path

    # ------------------------------------------------------------ peers

    def peer_keys(self, name: str) -> list[PeerKey]:
        """The pinned key (unless it was revoked) and every earlier key of ``name``."""
        keys: list[PeerKey] = []
        revoked_ids = set()
        if self.peer_history.is_dir():
            for path in sorted(self.peer_history.glob(f"{name}-*.json")):
                record = json.loads(path.read_text(encoding="utf-8"))
                ident = PublicIdentity.loads(json.dumps(record["identity"]), source=str(path))
                revocation = record.get("revocation")
                keys.append(PeerKey(
                    identity=ident, current=False,
                    valid_through_seq=record.get("valid_through_seq"),
                    revoked_since=record.get("revoked_since"),
                    revocation=base64.b64decode(revocation) if revocation else None))
                if record.get("revoked_since") is not None:
                    revoked_ids.add(ident.key_id)
        current = self.home.peer_identity(name)
        if current.key_id not in {k.identity.key_id for k in keys}:
            keys.insert(0, PeerKey(identity=current, current=True))
        return keys

    def _write_peer_record(self, name: str, key: PeerKey) -> None:
        self.peer_history.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {
            "identity": key.identity.to_json(),
            "valid_through_seq": key.valid_through_seq,
            "revoked_since": key.revoked_since,
            "revocation": base64.b64encode(key.revocation).decode() if key.revocation else None,
        }
        _replace(self.peer_history / f"{name}-{_short(key.identity)}.json",
                 json.dumps(record, indent=2) + "\n")

    def rotate_peer(self, name: str, old: PublicIdentity, new: PublicIdentity,
                    valid_through_seq: int) -> None:
        """Pin ``new`` for ``name``; keep ``old`` for what it signed up to that envelope."""
        self._write_peer_record(name, PeerKey(identity=old, current=False,
                                              valid_through_seq=valid_through_seq))
        _replace(self.home.peers_dir / f"{name}.pub", new.dumps())
        cfg = self.home.config()
        if name not in cfg.peers:
            raise UsageError(f"{name} is not a pinned peer")
        peers = dict(cfg.peers)
        peers[name] = dataclasses.replace(cfg.peers[name], fingerprint=new.fingerprint)
        self.home.write_config(dataclasses.replace(cfg, peers=peers))

    def revoke_peer(self, name: str, key: PublicIdentity, *, since: int, through_seq: int,
                    statement: bytes) -> None:
        """Record that ``key`` of ``name`` is revoked: no envelope after ``through_seq``, and no
        signature dated at or after ``since``, is trusted."""
        self._write_peer_record(name, PeerKey(identity=key, current=False,
                                              valid_through_seq=through_seq,
                                              revoked_since=since, revocation=statement))
        self.write_revocation(key, statement, peer=True)
