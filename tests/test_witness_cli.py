"""``bridge witness`` on real homes: pinning refuses a wrong fingerprint and a party of the
exchange and changes nothing; a pin is a typed ``[witnesses.NAME]`` table; ``witness log``
prints a hostile origin escaped; a witness home that does not exist is a clear error."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core import audit_tree
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.notes import witness_wire
from bridge.home.folder import Home
from bridge.home.relay import join_relay
from bridge.transports.relay.nkeys import UserKey
from bridge.witness.home import WitnessHome, cosigner


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _homes(tmp_path: Path) -> tuple[Home, WitnessHome]:
    party = Home(tmp_path / "alpha")
    party.init("alpha")
    wit = WitnessHome(tmp_path / "mediator")
    wit.init("mediator")
    return party, wit


def test_pin_with_a_wrong_fingerprint_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    party, wit = _homes(tmp_path)
    before = party.config_path.read_bytes()
    code, out = run("--home", party.path, "witness", "pin", wit.public_path("mediator"),
                    "--url", "http://127.0.0.1:9", "--fingerprint", "AAAA BBBB")
    assert code != 0 and "fingerprint mismatch" in out
    assert party.config_path.read_bytes() == before
    assert not party.witnesses_dir.exists()


def test_pin_writes_the_witness_table_and_its_identity_file(tmp_path: Path) -> None:
    party, wit = _homes(tmp_path)
    fp = wit.public_identity().fingerprint
    code, out = run("--home", party.path, "witness", "pin", wit.public_path("mediator"),
                    "--url", "http://127.0.0.1:9", "--fingerprint", fp.lower(),
                    "--interval", "2")
    assert code == 0, out
    cfg = party.config().witnesses["mediator"]
    assert (cfg.url, cfg.fingerprint, cfg.interval_seconds) == ("http://127.0.0.1:9", fp, 2.0)
    assert "[witnesses.mediator]" in party.config_path.read_text()
    assert (party.witnesses_dir / "mediator.pub").exists()


def test_a_party_of_the_exchange_cannot_be_pinned_as_its_witness(tmp_path: Path) -> None:
    party, _ = _homes(tmp_path)
    me = party.public_identity()
    code, out = run("--home", party.path, "witness", "pin", party.public_key_path("alpha"),
                    "--url", "http://127.0.0.1:9", "--fingerprint", me.fingerprint)
    assert code != 0 and "a witness is a third party" in out


def test_witness_log_prints_a_hostile_origin_escaped(tmp_path: Path) -> None:
    _, wit = _homes(tmp_path)
    me = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
    signed = audit_tree.sign_log_checkpoint(me, 1, bytes(32))
    hostile = signed.replace(audit_tree.identity_origin(me.public).encode(),
                             b"evil\xe2\x80\xae\x1b[2Jorigin", 1)
    with contextlib.closing(wit.state()) as s:
        s.judge(witness_wire.format_request(0, [], hostile), 1, cosigner(wit.identity()))
        s.judge(witness_wire.format_request(0, [], signed), 2, cosigner(wit.identity()))
    code, out = run("--home", wit.path, "witness", "log")
    assert code == 0, out
    assert "\x1b" not in out and "\u202e" not in out
    assert "refused 404" in out or "refused 400" in out
    code, out = run("--home", wit.path, "witness", "log", "--json")
    assert [r["status"] for r in json.loads(out)["requests"]][-1] == 404


def test_witness_commands_on_a_folder_that_is_not_a_witness_home(tmp_path: Path) -> None:
    code, out = run("--home", tmp_path / "nothing", "witness", "log")
    assert code != 0 and "is not a witness home" in out
    assert not (tmp_path / "nothing" / "witness.db").exists()


def test_pin_via_relay_is_refused_without_a_relay_or_with_a_url_and_changes_nothing(
        tmp_path: Path) -> None:
    party, wit = _homes(tmp_path)
    before = party.config_path.read_bytes()
    fp = wit.identity().public.fingerprint
    code, out = run("--home", party.path, "witness", "pin", wit.public_path("mediator"),
                    "--via", "relay", "--fingerprint", fp)
    assert code != 0 and "joined no relay" in out
    join_relay(party, "nats://127.0.0.1:4222", UserKey.generate().seed_block())
    joined = party.config_path.read_bytes()
    code, out = run("--home", party.path, "witness", "pin", wit.public_path("mediator"),
                    "--via", "relay", "--url", "http://127.0.0.1:9", "--fingerprint", fp)
    assert code != 0 and "not via the relay" in out
    assert party.config_path.read_bytes() == joined != before
    assert not (party.witnesses_dir / "mediator.pub").exists()


def test_pin_via_relay_writes_no_url_and_witness_status_shows_the_pin(tmp_path: Path) -> None:
    party, wit = _homes(tmp_path)
    join_relay(party, "nats://127.0.0.1:4222", UserKey.generate().seed_block())
    fp = wit.identity().public.fingerprint
    code, out = run("--home", party.path, "witness", "pin", wit.public_path("mediator"),
                    "--via", "relay", "--fingerprint", fp)
    assert code == 0 and "through the relay" in out, out
    text = party.config_path.read_text()
    table = text[text.index("[witnesses.mediator]"):]
    assert 'via = "relay"' in table and "url" not in table
    assert party.config().witnesses["mediator"].via == "relay"
    code, out = run("--home", party.path, "witness", "status")
    assert code == 0 and "witness mediator: through the relay" in out and \
        "daemon not running" in out, out
    code, out = run("--home", party.path, "witness", "status", "--json")
    shown = json.loads(out)
    assert shown["daemon_running"] is False
    assert shown["witnesses"]["mediator"]["via"] == "relay"
