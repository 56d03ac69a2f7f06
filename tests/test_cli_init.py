"""`bridge init` and `bridge keys show`, through the installed command in a real subprocess."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import UsageError
from bridge.home.folder import Home

BRIDGE = Path(sys.executable).parent / "bridge"
TIMEOUT = 60


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "BRIDGE_HOME"}
    return subprocess.run([str(BRIDGE), *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture(scope="module")
def alpha_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home created by `bridge init`, shared by the tests that only read it."""
    cwd = tmp_path_factory.mktemp("cli")
    result = run("--home", "alpha-home", "init", "--party", "alpha", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "alpha-home"


@pytest.fixture
def fresh_home(tmp_path: Path) -> Path:
    """A home of its own, for tests that change it."""
    result = run("--home", "home", "init", "--party", "alpha", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "home"


def test_bridge_command_is_installed() -> None:
    assert BRIDGE.exists(), f"{BRIDGE} missing: pip install -e . in the virtualenv"


def test_init_creates_config_and_keys(alpha_home: Path) -> None:
    assert (alpha_home / "bridge.toml").is_file()
    key = alpha_home / "keys" / "alpha.key"
    pub = alpha_home / "keys" / "alpha.pub"
    assert key.is_file() and pub.is_file()
    assert mode(key) == 0o600
    assert mode(alpha_home) == 0o700 and mode(alpha_home / "keys") == 0o700
    ident = PublicIdentity.loads(pub.read_text())
    assert ident.party == "alpha"
    assert json.loads(key.read_text())["protection"] == "none"
    assert 'party = "alpha"' in (alpha_home / "bridge.toml").read_text()


def test_init_output_names_files_and_fingerprint(tmp_path: Path) -> None:
    result = run("--home", "h", "init", "--party", "gamma", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pub = PublicIdentity.loads((tmp_path / "h" / "keys" / "gamma.pub").read_text())
    assert pub.fingerprint in result.stdout
    assert "gamma.key" in result.stdout and "gamma.pub" in result.stdout


def test_init_twice_refuses_and_keeps_the_keys(alpha_home: Path) -> None:
    key = alpha_home / "keys" / "alpha.key"
    before = key.read_bytes()
    result = run("--home", str(alpha_home), "init", "--party", "alpha", cwd=alpha_home.parent)
    assert result.returncode != 0
    assert "refusing to overwrite" in result.stderr
    assert key.read_bytes() == before


def test_init_for_another_party_in_the_same_home_refuses(alpha_home: Path) -> None:
    result = run("--home", str(alpha_home), "init", "--party", "beta", cwd=alpha_home.parent)
    assert result.returncode != 0
    assert not (alpha_home / "keys" / "beta.key").exists()


@pytest.mark.parametrize("party", ["Alpha", "al pha", "-x", ""])
def test_init_refuses_bad_party_names(tmp_path: Path, party: str) -> None:
    result = run("--home", "h", "init", "--party", party, cwd=tmp_path)
    assert result.returncode != 0
    assert "party" in result.stderr
    assert not (tmp_path / "h" / "bridge.toml").exists()


def test_keys_show_json(alpha_home: Path) -> None:
    result = run("--home", str(alpha_home), "keys", "show", "--json", cwd=alpha_home.parent)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    pub = PublicIdentity.loads((alpha_home / "keys" / "alpha.pub").read_text())
    assert out["party"] == "alpha"
    assert out["fingerprint"] == pub.fingerprint


def test_keys_show_text(alpha_home: Path) -> None:
    result = run("--home", str(alpha_home), "keys", "show", cwd=alpha_home.parent)
    assert result.returncode == 0, result.stderr
    assert "alpha" in result.stdout
    pub = PublicIdentity.loads((alpha_home / "keys" / "alpha.pub").read_text())
    assert pub.fingerprint in result.stdout


def test_keys_show_without_a_home_says_how_to_make_one(tmp_path: Path) -> None:
    result = run("--home", "nowhere", "keys", "show", cwd=tmp_path)
    assert result.returncode != 0
    assert "init" in result.stderr


def test_home_identity_loads_the_key_bridge_init_wrote(alpha_home: Path) -> None:
    home = Home(alpha_home)
    assert home.identity().public == home.public_identity()


def test_key_readable_by_others_refused_by_home(fresh_home: Path) -> None:
    key = fresh_home / "keys" / "alpha.key"
    os.chmod(key, 0o644)
    with pytest.raises(UsageError) as exc:
        Home(fresh_home).identity()
    assert str(key) in str(exc.value)
    assert "chmod 600" in str(exc.value)


@functools.cache
def _has_command(name: str) -> bool:
    return run(name, "--help", cwd=Path(__file__).parent).returncode == 0


def test_key_readable_by_others_refused_by_the_cli(fresh_home: Path) -> None:
    """Every command that loads the private key refuses it, naming the file and the fix."""
    if not _has_command("daemon"):
        pytest.skip("no CLI command loads the private key yet")
    key = fresh_home / "keys" / "alpha.key"
    os.chmod(key, 0o644)
    result = run("--home", str(fresh_home), "daemon", cwd=fresh_home.parent)
    assert result.returncode != 0
    assert str(key) in result.stderr
    assert "chmod 600" in result.stderr


def test_passphrase_file_seals_the_key(tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("synthetic test passphrase\n")
    result = run("--home", "h", "init", "--party", "alpha", "--passphrase-file", str(secret),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    home = Home(tmp_path / "h")
    key = home.private_key_path("alpha")
    assert mode(key) == 0o600
    assert json.loads(key.read_text())["protection"] == "argon2id-xsalsa20poly1305"
    assert "synthetic test passphrase" not in key.read_text()
    # The trailing newline of the file is not part of the passphrase.
    assert home.identity(b"synthetic test passphrase").public == home.public_identity()
    with pytest.raises(UsageError, match="passphrase"):
        home.identity()
    with pytest.raises(UsageError, match="wrong passphrase"):
        home.identity(b"another passphrase")
    if _has_command("daemon"):
        result = run("--home", "h", "daemon", cwd=tmp_path)
        assert result.returncode != 0
        assert "passphrase" in result.stderr


def test_empty_passphrase_file_refused(tmp_path: Path) -> None:
    secret = tmp_path / "empty.txt"
    secret.write_text("\n")
    result = run("--home", "h", "init", "--party", "alpha", "--passphrase-file", str(secret),
                 cwd=tmp_path)
    assert result.returncode != 0
    assert "empty" in result.stderr
    assert not (tmp_path / "h" / "keys" / "alpha.key").exists()


def test_bridge_home_environment_variable(tmp_path: Path) -> None:
    env = {"BRIDGE_HOME": str(tmp_path / "from-env")}
    result = run("init", "--party", "beta", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env" / "keys" / "beta.key").is_file()
    assert not (tmp_path / ".bridge").exists()
    shown = run("keys", "show", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["party"] == "beta"


def test_home_option_wins_over_environment(tmp_path: Path) -> None:
    env = {"BRIDGE_HOME": str(tmp_path / "from-env")}
    result = run("--home", "from-flag", "init", "--party", "beta", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-flag" / "bridge.toml").is_file()
    assert not (tmp_path / "from-env").exists()


def test_default_home_is_dot_bridge(tmp_path: Path) -> None:
    result = run("init", "--party", "beta", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".bridge" / "bridge.toml").is_file()


def test_help_and_version_tell_bridge_from_iproute2s_command_of_that_name() -> None:
    from click.testing import CliRunner

    from bridge.cli.main import main

    helped = CliRunner().invoke(main, ["--help"])
    assert "iproute2" in helped.output and ".venv/bin/activate" in helped.output
    version = CliRunner().invoke(main, ["--version"])
    assert "Bridge:" in version.output


def test_init_makes_a_post_quantum_suite_2_identity_by_default(alpha_home: Path) -> None:
    public = PublicIdentity.loads((alpha_home / "keys" / "alpha.pub").read_bytes())
    assert public.suite == (0x647A, 1, 3)


def test_init_suite_1_keeps_the_classical_identity_for_a_peer_not_yet_upgraded(
        tmp_path: Path) -> None:
    result = run("--home", "h", "init", "--party", "alpha", "--suite", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "key suite:     1 (Ed25519)" in result.stdout
    public = PublicIdentity.loads((tmp_path / "h" / "keys" / "alpha.pub").read_bytes())
    assert public.suite == (0x20, 1, 3) and len(public.sign_key) == 32


def test_init_refuses_a_suite_not_in_the_table(tmp_path: Path) -> None:
    result = run("--home", "h", "init", "--party", "alpha", "--suite", "3", cwd=tmp_path)
    assert result.returncode != 0 and "--suite" in result.stderr
    assert not (tmp_path / "h").exists()
