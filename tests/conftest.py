"""Shared fixtures: fixed, synthetic test identities and small helpers. Keep it generic."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from bridge.identity import Keyring, PrivateIdentity

# A fixed creation time (2026-01-01T00:00:00Z in ms) so that identities are reproducible.
CREATED = 1_767_225_600_000


def fixed_random(seed: str) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes`` stand-in: SHAKE-256 of the seed, consumed in order."""
    stream = hashlib.shake_256(b"bridge-tests/" + seed.encode()).digest(4096)
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        out = stream[pos : pos + n]
        pos += n
        assert len(out) == n, "fixed_random stream exhausted"
        return out

    return take


def make_identity(party: str, seed: str | None = None) -> PrivateIdentity:
    """A deterministic test identity; a different ``seed`` gives other keys for the same party."""
    return PrivateIdentity.generate(party, created=CREATED,
                                    random_bytes=fixed_random(seed or party))


@pytest.fixture(scope="session")
def alpha() -> PrivateIdentity:
    return make_identity("alpha")


@pytest.fixture(scope="session")
def beta() -> PrivateIdentity:
    return make_identity("beta")


@pytest.fixture(scope="session")
def mallory() -> PrivateIdentity:
    """A third party, pinned by the victims in some tests: an insider, not a stranger."""
    return make_identity("mallory")


@pytest.fixture(scope="session")
def keyring(alpha: PrivateIdentity, beta: PrivateIdentity) -> Keyring:
    """What both honest parties have pinned: each other (and themselves)."""
    return Keyring.of([alpha.public, beta.public])


@pytest.fixture
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seal key files with the minimum Argon2id cost: the format is the same, tests are fast."""
    import nacl.pwhash

    monkeypatch.setattr(nacl.pwhash.argon2id, "OPSLIMIT_MODERATE",
                        nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(nacl.pwhash.argon2id, "MEMLIMIT_MODERATE",
                        nacl.pwhash.argon2id.MEMLIMIT_MIN)
