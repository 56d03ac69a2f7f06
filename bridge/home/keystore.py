"""Key files over time: this party's current and retired keys, and each peer's pinned key with
the keys it used before (rotated or revoked).

    HOME/keys/PARTY.key, PARTY.pub               the current key
    HOME/keys/history/PARTY-<fp>.key, .pub       retired keys: still open envelopes that were
                                                 sealed to them before the peer learnt the new one
    HOME/keys/history/PARTY-<fp>.rotation        the statement that retired that key, and
                     PARTY-<fp>.revocation       the one that revoked it (PROTOCOL.md §4.5)
    HOME/keys/peers/NAME.pub                     the peer's pinned key
    HOME/keys/peers/history/NAME-<fp>.json       the peer's earlier keys, with the last sequence
                                                 number each may sign, the rotation that retired
                                                 it and any revocation

Every write is a whole-file replace through ``bridge.home.files`` (mode 0600, a fresh temporary
file,
fsync, rename), so a crash leaves the old file or the new one, never half of either. Files are
written only after the store has committed the change they record (the store is the record;
the files follow it, and are brought up to date at start if a crash came in between).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bridge.core import keylife
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.errors import BridgeError, UsageError
from bridge.home.files import write_file
from bridge.home.folder import Home
from bridge.home.key_files import load_private, load_public


def _short(identity: PublicIdentity) -> str:
    return identity.fingerprint.replace(" ", "")[:16]


def _replace(path: Path, data: str | bytes) -> None:
    """Every key file, public or private: 0600, whole-file replace (``bridge.home.files``)."""
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
    rotation: bytes | None = None  # the statement that retired it
    retired_at: int | None = None  # that statement's ``at``
    rotated_at: int | None = None  # when we accepted it, by our clock (the daily bound)


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

    def _staged_statement_path(self, party: str) -> Path:
        return self.home.keys_dir / f"{party}.statement.next"

    def stage_own(self, new: PrivateIdentity, passphrase: bytes | None,
                  statement: bytes) -> None:
        """Write the next key, and the statement that announces it, beside the current one;
        ``install_own`` makes it current once the store has committed the change."""
        path = self.staged_path(new.party)
        path.unlink(missing_ok=True)
        _replace(self._staged_statement_path(new.party), statement)
        _replace(path, new.dumps(passphrase=passphrase))

    def staged_own(self, party: str, passphrase: bytes | None) -> PrivateIdentity | None:
        path = self.staged_path(party)
        return load_private(path, passphrase=passphrase) if path.exists() else None

    def discard_staged(self, party: str) -> None:
        self.staged_path(party).unlink(missing_ok=True)
        self._staged_statement_path(party).unlink(missing_ok=True)

    def install_own(self, old: PrivateIdentity, new: PrivateIdentity,
                    passphrase: bytes | None) -> None:
        """Retire ``old`` into the history, with the staged statement that retired it (the
        rotation or revocation a verifier needs: ``keys history``), and make the staged
        ``new`` current."""
        self.history.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = self.history / f"{old.party}-{_short(old.public)}"
        _replace(stem.with_suffix(".key"), old.dumps(passphrase=passphrase))
        _replace(stem.with_suffix(".pub"), old.public.dumps())
        staged_statement = self._staged_statement_path(new.party)
        if staged_statement.exists():
            statement = staged_statement.read_bytes()
            kind = keylife.statement_type(statement)
            suffix = ".rotation" if kind == keylife.ROTATION else ".revocation"
            _replace(stem.with_suffix(suffix), statement)
            staged_statement.unlink()
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

    def own_rotations_since(self, party: str, t: int) -> int:
        """How many rotations of this party's keys were made at or after ``t``."""
        n = 0
        for path in self.history.glob(f"{party}-*.rotation") if self.history.is_dir() else ():
            try:
                n += keylife.statement_time(path.read_bytes()) >= t
            except BridgeError:
                continue
        return n

    def own_history(self) -> keylife.History:
        """This party's identities, current first, and the statements that retired or
        revoked the earlier ones: what a verifier needs (``bridge keys history``)."""
        current = self.home.public_identity()
        idents = [current]
        statements: list[bytes] = []
        if self.history.is_dir():
            idents += sorted((load_public(p) for p in self.history.glob(f"{current.party}-*.pub")),
                             key=lambda i: i.created, reverse=True)
            for pattern in (f"{current.party}-*.rotation", f"{current.party}-*.revocation"):
                statements += [p.read_bytes() for p in sorted(self.history.glob(pattern))]
        return keylife.History(identities=tuple(idents), statements=tuple(statements))

    def peer_key_history(self, name: str) -> keylife.History:
        """The same for peer ``name``, as this party learnt it."""
        keys = self.peer_keys(name)
        statements = [s for k in keys for s in (k.rotation, k.revocation) if s is not None]
        return keylife.History(identities=tuple(k.identity for k in keys),
                               statements=tuple(statements))

    def keyring(self) -> Keyring:
        """Every key of this party and of each pinned peer, with when each was retired or
        revoked: what this home's own checks use (an export is checked as a mediator would
        check it, with the whole key history)."""
        peers = self.home.config().peers
        histories = [self.own_history(), *(self.peer_key_history(n) for n in peers)]
        idents = [i for h in histories for i in h.identities]
        # All are ours to trust (pinned, or learnt through verified statements); not strict:
        # a home from before rotation statements were kept has old keys without them.
        return keylife.build_keyring(idents, (), [s for h in histories for s in h.statements],
                                     strict=False)

    # ------------------------------------------------------------ peers

    def peer_keys(self, name: str) -> list[PeerKey]:
        """The pinned key (unless it was revoked) and every earlier key of ``name``."""
        keys: list[PeerKey] = []
        if self.peer_history.is_dir():
            for path in sorted(self.peer_history.glob(f"{name}-*.json")):
                record = json.loads(path.read_text(encoding="utf-8"))
                ident = PublicIdentity.loads(json.dumps(record["identity"]), source=str(path))
                revocation, rotation = record.get("revocation"), record.get("rotation")
                keys.append(PeerKey(
                    identity=ident, current=False,
                    valid_through_seq=record.get("valid_through_seq"),
                    revoked_since=record.get("revoked_since"),
                    revocation=base64.b64decode(revocation) if revocation else None,
                    rotation=base64.b64decode(rotation) if rotation else None,
                    retired_at=record.get("retired_at"), rotated_at=record.get("rotated_at")))
        current = self.home.peer_identity(name)
        if current.key_id not in {k.identity.key_id for k in keys}:
            keys.insert(0, PeerKey(identity=current, current=True))
        return keys

    def _write_peer_record(self, name: str, key: PeerKey) -> None:
        self.peer_history.mkdir(mode=0o700, parents=True, exist_ok=True)
        def b64(data: bytes | None) -> str | None:
            return base64.b64encode(data).decode() if data else None

        record = {
            "identity": key.identity.to_json(),
            "valid_through_seq": key.valid_through_seq,
            "revoked_since": key.revoked_since,
            "revocation": b64(key.revocation),
            "rotation": b64(key.rotation),
            "retired_at": key.retired_at,
            "rotated_at": key.rotated_at,
        }
        _replace(self.peer_history / f"{name}-{_short(key.identity)}.json",
                 json.dumps(record, indent=2) + "\n")

    def rotate_peer(self, name: str, retired: PeerKey, new: PublicIdentity) -> None:
        """Pin ``new`` for ``name``; keep the ``retired`` key (with its rotation) for what it
        signed up to that envelope."""
        self._write_peer_record(name, retired)
        _replace(self.home.peers_dir / f"{name}.pub", new.dumps())
        cfg = self.home.config()
        if name not in cfg.peers:
            raise UsageError(f"{name} is not a pinned peer")
        peers = dict(cfg.peers)
        peers[name] = dataclasses.replace(cfg.peers[name], fingerprint=new.fingerprint)
        self.home.write_config(dataclasses.replace(cfg, peers=peers))

    def revoke_peer(self, name: str, revoked: PeerKey) -> None:
        """Record that a key of ``name`` is revoked: no envelope after its
        ``valid_through_seq``, and no signature dated at or after its ``revoked_since``, is
        trusted."""
        assert revoked.revocation is not None
        self._write_peer_record(name, revoked)
        self.write_revocation(revoked.identity, revoked.revocation, peer=True)
