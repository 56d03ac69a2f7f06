"""Shared fixtures: fixed, synthetic test identities and small helpers. Keep it generic."""

from __future__ import annotations

import contextlib
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
def mediator() -> PrivateIdentity:
    """The mediator's witness identity, for tests of checkpoints and cosignatures."""
    return make_identity("mediator")


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


def pytest_configure(config: pytest.Config) -> None:
    """Bridge's modules compiled once, before any test runs (in the controller, before any
    worker): every daemon and CLI the tests start as a subprocess then loads them instead of
    compiling about 170 modules from source at each start, which it does when
    ``PYTHONDONTWRITEBYTECODE`` is set (as it often is where tests run). A tree that cannot be
    written is left as it is: only slower."""
    if hasattr(config, "workerinput"):
        return
    import compileall
    from pathlib import Path

    import bridge

    with contextlib.suppress(OSError):
        compileall.compile_dir(Path(bridge.__file__).parent, quiet=2)


# The files whose tests take longest (real daemons, relays, witnesses, subprocesses), longest
# first, as `pytest -n 4 --dist loadfile --durations=0` ranked them. They are handed out first:
# with whole files to a worker, one of them begun when the others are nearly done is the
# suite's tail (longest-first is what keeps it short). Only the order changes: a file missing
# here runs after them, as collected.
LONGEST_FIRST = (
    "test_verify_bombs.py", "daemon/test_audit_trail.py", "test_cli_init.py",
    "relay/test_relay_cli.py", "daemon/test_relay_faults.py", "daemon/test_files_and_terminal.py",
    "daemon/test_witness_relay.py", "daemon/test_key_lifecycle.py",
    "daemon/test_api_fuzz_findings.py", "daemon/test_witness.py", "daemon/test_store_corrupt.py",
    "daemon/test_delivery_answers.py", "daemon/test_tls_and_local_access.py",
    "daemon/test_kill9.py", "test_fuzz.py", "relay/test_relay_run.py", "daemon/test_retries.py",
    "daemon/test_carry.py", "test_import_bombs.py", "relay/test_relay_join.py",
    "daemon/test_witness_peer.py", "daemon/test_relay_exchange.py",
    "daemon/test_backup_restore.py", "test_readme_tour.py", "test_codec.py",
    "daemon/test_reconcile.py", "adversarial/test_floods.py", "daemon/test_exchange.py",
    "daemon/test_lifecycle_deadlines.py", "daemon/test_suites.py", "test_demo_output.py",
    "test_pair_ports.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from pathlib import Path

    here = Path(__file__).parent
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}

    def place(item: pytest.Item) -> int:
        try:
            return rank.get(item.path.relative_to(here).as_posix(), len(rank))
        except ValueError:  # outside tests/
            return len(rank)

    items.sort(key=place)  # stable: within a file, and for the rest, the collected order


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
