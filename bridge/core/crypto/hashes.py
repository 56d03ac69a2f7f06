"""The hash and the XOF, the same in every suite (PROTOCOL.md §1: SHA-256 is FIPS 180-4,
SHAKE256 FIPS 202), named here and nowhere else.

SHA-256: every digest and key id, the Merkle trees (RFC 9162 §2.1, PROTOCOL.md §6.3), the audit
chain (§11.1), envelope and carrier file hashes; as HMAC-SHA256 (RFC 2104) under a key of the
moment, the store check's tallies (``bridge.core.audit_tally``, never sent). SHAKE256: the leaf
salts (§6.4) and the X-Wing key expansion. ``bridge.core.crypto.suites`` names the rest of
each suite and gives these on; they are in a file of their own because the Merkle tree and the
entries are loaded by commands that load no cryptographic library (``bridge status``,
``bridge send``), which ``suites`` imports. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac

new_sha256 = hashlib.sha256
"""A SHA-256 hasher: ``new_sha256(data).digest()``, or ``update`` as the data comes. The
per-item loops (a Merkle tree of a million leaves) bind it to a local name."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def shake256(data: bytes, size: int) -> bytes:
    """The first ``size`` bytes of SHAKE256 over ``data``."""
    return hashlib.shake_256(data).digest(size)


def keyed_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) of ``data`` under ``key``."""
    return hmac.digest(key, data, hashlib.sha256)


__all__ = ["keyed_sha256", "new_sha256", "sha256", "shake256"]
