"""The audit log as an RFC 9162 Merkle tree, and its checkpoints (PROTOCOL.md §13.1).

Leaf ``i`` of a party's log tree is the record bytes (``audit.record_bytes``) of the audit
record with ``seq = i + 1``: the canonical map of its time, kind, peer, body and sequence
number. The hash chain of §11 stays as it was; the tree is what a witness sees. A record's
leaf binds everything a reader of a receipt wants from it (when the party says it logged
what, under which number); an inclusion proof to a witnessed checkpoint then shows the
record was in the log no later than the witness's time.

The party signs a checkpoint (C2SP tlog-checkpoint) of its tree under its origin
(``checkpoint.party_origin``) with :func:`sign_log_checkpoint`, which is the one place the
party's key signs a checkpoint: a second signature (a post-quantum one) is added there.

Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.core import audit, codec
from bridge.core.crypto.identity import PrivateIdentity, PublicIdentity
from bridge.core.errors import DecodeError, VerificationError
from bridge.core.merkle import leaf_hash, root_from_inclusion_proof
from bridge.core.notes.checkpoint import (
    Checkpoint,
    ed25519_note_verifier,
    party_origin,
    signed_checkpoint,
)
from bridge.core.notes.note import NoteVerifier

__all__ = [
    "LoggedRecord",
    "identity_origin",
    "log_verifier",
    "record_leaf",
    "sign_log_checkpoint",
    "verify_logged",
]


def record_leaf(record: audit.AuditRecord) -> bytes:
    """The leaf hash of a record: SHA-256(0x00 || record bytes) (RFC 9162 §2.1.1)."""
    return leaf_hash(record.record_bytes())


def identity_origin(identity: PublicIdentity) -> str:
    """The origin of the log this identity signs."""
    return party_origin(identity.party, identity.fingerprint)


def sign_log_checkpoint(me: PrivateIdentity, size: int, root: bytes) -> bytes:
    """The party's signed checkpoint of its log tree at ``size`` (a C2SP signed note)."""
    cp = Checkpoint(origin=identity_origin(me.public), size=size, root=root)
    return signed_checkpoint(cp, public=me.public.note_key, sign=me.sign_note)


def log_verifier(identity: PublicIdentity) -> NoteVerifier:
    """The note verifier of the party's checkpoints (Ed25519, key name = origin)."""
    return ed25519_note_verifier(identity_origin(identity), identity.note_key)


@dataclass(frozen=True, kw_only=True)
class LoggedRecord:
    """A record's place in a checkpointed tree: its bytes, its index, the proof."""

    record: bytes  # audit.record_bytes of the record
    index: int
    proof: tuple[bytes, ...]

    def fields(self) -> dict[str, Any]:
        """The record's decoded map (at, body, kind, peer, seq, v)."""
        value = codec.decode(self.record, audit.BODY_LIMITS)
        if not isinstance(value, dict) or value.get("seq") != self.index + 1:
            raise DecodeError("a logged record is a record map with seq = index + 1",
                              reason="malformed")
        return value


def verify_logged(logged: LoggedRecord, checkpoint: Checkpoint) -> dict[str, Any]:
    """The record's fields, once its inclusion proof holds for the checkpoint's root;
    :class:`VerificationError` (``bad_proof``) otherwise."""
    computed = root_from_inclusion_proof(leaf_hash(logged.record), logged.index,
                                         checkpoint.size, list(logged.proof))
    if computed != checkpoint.root:
        raise VerificationError(
            f"audit record {logged.index + 1} is not in the checkpointed tree of size "
            f"{checkpoint.size}", reason="bad_proof")
    return logged.fields()
