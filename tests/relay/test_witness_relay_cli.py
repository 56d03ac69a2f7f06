"""The mediator's witness on its relay: ``relay init --witness`` and ``relay add-witness``
write the witness's credential file (0600) and its ``[witnesses.NAME]`` table, which every
party's permissions follow; a name that is a party's, or given twice, is refused and changes
nothing; ``witness run --relay`` needs its credentials."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from click.testing import CliRunner

from bridge.cli.main import main
from bridge.transports.relay import binding
from bridge.transports.relay.mediator import MediatorHome


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_init_with_a_witness_writes_its_creds_and_the_parties_may_reach_it(
        tmp_path: Path) -> None:
    home = MediatorHome(tmp_path / "m")
    code, out = run("--home", home.path, "relay", "init", "--party", "alpha", "--party", "bravo",
                    "--witness", "mediator", "--listen", "127.0.0.1:4999")
    assert code == 0, out
    assert "witness run --relay nats://127.0.0.1:4999 --creds mediator.creds" in out
    assert "witness pin mediator.pub --via relay" in out
    assert stat.S_IMODE(home.creds_path("mediator").stat().st_mode) == 0o600
    table = tomllib.loads(home.config_path.read_text())["witnesses"]["mediator"]
    config = home.config()
    assert table["nkey"] == config.witnesses["mediator"].nkey
    for party in ("alpha", "bravo"):
        assert binding.witness_subject("mediator") in config.permissions(party).publish


def test_add_witness_adds_one_and_refuses_a_party_or_a_second_of_one_name(
        tmp_path: Path) -> None:
    home = MediatorHome(tmp_path / "m")
    assert run("--home", home.path, "relay", "init", "--party", "alpha", "--party", "bravo",
               "--listen", "127.0.0.1:4999")[0] == 0
    code, out = run("--home", home.path, "relay", "add-witness", "mediator")
    assert code == 0 and "Added witness mediator" in out, out
    before, creds = home.config_path.read_bytes(), home.creds_path("mediator").read_bytes()
    for name, why in (("mediator", "already on this relay"), ("alpha", "is a party"),
                      ("mediator-admin", "mediator's own name")):
        code, out = run("--home", home.path, "relay", "add-witness", name)
        assert code != 0 and why in out, out
    assert home.config_path.read_bytes() == before
    code, out = run("--home", home.path, "relay", "add-party", "mediator")
    assert code != 0 and "is a witness on this relay" in out, out
    assert home.config_path.read_bytes() == before
    assert home.creds_path("mediator").read_bytes() == creds  # the witness's key, untouched


def test_witness_run_through_the_relay_needs_its_credential_file(tmp_path: Path) -> None:
    code, out = run("--home", tmp_path / "w", "witness", "run", "--relay", "nats://127.0.0.1:1")
    assert code != 0 and "--relay needs --creds" in out
    code, out = run("--home", tmp_path / "w", "witness", "run", "--creds", __file__)
    assert code != 0 and "--creds and --tls-ca are for --relay" in out


def test_init_refuses_a_witness_named_as_a_party_and_writes_nothing(tmp_path: Path) -> None:
    home = MediatorHome(tmp_path / "m")
    code, out = run("--home", home.path, "relay", "init", "--party", "alpha", "--party", "bravo",
                    "--witness", "alpha")
    assert code != 0 and "a witness is named twice, or as a party" in out, out
    assert not home.path.exists()
