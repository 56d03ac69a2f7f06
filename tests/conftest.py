"""Shared fixtures: fixed, synthetic test identities and small helpers. Keep it generic."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from bridge.core.crypto.identity import Keyring, PrivateIdentity

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
    from bridge.core.crypto import suites

    monkeypatch.setattr(suites, "ARGON2ID_COST", (suites.KDF_OPSLIMIT[0], suites.KDF_MEMLIMIT[0]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the end of each daemon's log (tests that start daemons list them in
    ``item.bridge_nodes``) to the report: pytest removes old temporary folders, logs included,
    so the path in an error message may be gone later."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for node in getattr(item, "bridge_nodes", []):
            try:
                lines = node.log_path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            report.sections.append((f"daemon log: {node.party} ({report.when})",
                                    "\n".join(lines[-40:])))
