"""bridge.toml is checked whole: an unknown section or key, a value of the wrong type or out of
range is an error that names it, and CONFIGURATION.md documents exactly what the code reads."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from bridge.core.errors import UsageError
from bridge.home.config import Config, Delivery, PeerConfig
from bridge.home.config_reference import reference_markdown
from bridge.home.folder import Home

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _config(tmp_path: Path) -> tuple[Home, str]:
    home = Home(tmp_path / "h")
    home.init("alpha", listen="127.0.0.1:7443")
    return home, home.config_path.read_text()


def _problem(home: Home, text: str) -> str:
    home.config_path.write_text(text)
    with pytest.raises(UsageError) as err:
        home.config()
    return str(err.value)


def test_reference_document_is_the_one_the_code_generates() -> None:
    assert (ROOT / "CONFIGURATION.md").read_text() == reference_markdown()


def test_every_key_init_writes_is_documented_and_read_back(tmp_path: Path) -> None:
    home, text = _config(tmp_path)
    doc = reference_markdown()
    for section, keys in tomllib.loads(text).items():
        assert f"## [{section}]" in doc
        for key in keys:
            assert f"| `{key}` |" in doc
    assert "# allowed_uids" in text  # the key the README names is there to fill in
    assert home.config() == Config.from_toml(tomllib.loads(text), "again")


@pytest.mark.parametrize(("edit", "named"), [
    (lambda t: t.replace("[delivery]", "[delivry]"), "'delivry' is not a known section "
                                                     "(did you mean 'delivery'?)"),
    (lambda t: t.replace("initial_backoff", "initial_backof"), "[delivery] 'initial_backof'"),
    (lambda t: t.replace("[tls]\nenabled = false", "[tls]\nenabled = 0"), "[tls] enabled must"),
    (lambda t: t + "\n[local]\nallowed_uids = [true]\n", "allowed_uids"),
    (lambda t: t.replace("chunk_items = 5000", 'chunk_items = "5000"'), "chunk_items must be"),
    (lambda t: t.replace("max_connections = 64", "max_connections = true"), "max_connections"),
])
def test_a_misspelled_or_mistyped_setting_is_named_not_ignored(tmp_path, edit, named) -> None:
    home, text = _config(tmp_path)
    if "[local]\nallowed_uids" in edit(""):
        text = text.replace("[local]\n# allowed_uids = [1001, 0]\n", "")
    assert named in _problem(home, edit(text))


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    home, text = _config(tmp_path)
    text = text.replace("[delivery]", "[delivry]").replace("burst", "bursts")
    message = _problem(home, text + "\n[extra]\nx = 1\n")
    assert "'delivry'" in message and "'bursts'" in message and "'extra'" in message


@pytest.mark.parametrize("backoff", [
    {"initial_backoff": -1.0}, {"initial_backoff": 0.0}, {"initial_backoff": 0.001},
    {"initial_backoff": 5.0, "max_backoff": 1.0}, {"request_timeout": 0.0},
    {"chunk_items": 0},
])
def test_a_backoff_that_would_make_a_retry_loop_is_refused(tmp_path, backoff) -> None:
    with pytest.raises(ValueError, match=r"\[delivery\]"):
        Delivery(**backoff)
    home, text = _config(tmp_path)
    for key, value in backoff.items():
        text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line
                         for line in text.splitlines())
    assert "[delivery]" in _problem(home, text)


def test_values_with_quotes_cannot_break_out_of_their_string(tmp_path: Path) -> None:
    home, _ = _config(tmp_path)
    escape = '"\n[tls]\nenabled = true #'
    peer = PeerConfig(name="beta", url="http://127.0.0.1:7444", fingerprint="ABCD" + escape)
    cfg = dataclasses.replace(home.config(), peers={"beta": peer})
    text = cfg.to_toml()
    assert tomllib.loads(text)["peers"]["beta"]["fingerprint"] == peer.fingerprint
    assert tomllib.loads(text)["tls"]["enabled"] is False
    home.write_config(cfg)
    assert home.config() == cfg


def test_a_listen_address_that_is_no_address_is_refused_on_construction(tmp_path) -> None:
    home, _ = _config(tmp_path)
    with pytest.raises(ValueError, match="listen address must be HOST:PORT"):
        dataclasses.replace(home.config(), listen='127.0.0.1:7443"\n[tls]\nenabled = true #')


@pytest.mark.parametrize(("edit", "named"), [
    (lambda t: t.replace("max_connections = 64", "max_connections = 0"),
     "[limits] max_connections must be greater than or equal to 1, not 0"),
    (lambda t: t.replace("requests_per_second = 200.0", "requests_per_second = -5"),
     "[limits] requests_per_second must be greater than 0"),
    (lambda t: t.replace("max_body_bytes = 67108864", "max_body_bytes = 0"),
     "[limits] max_body_bytes must be greater than or equal to 1"),
    (lambda t: t.replace("deadline_check_seconds = 5.0", "deadline_check_seconds = 0.0"),
     "[bridge] deadline_check_seconds must be greater than or equal to 0.05"),
    (lambda t: t.replace('listen = "127.0.0.1:7443"', 'listen = "localhost"'),
     "[bridge] listen: listen address must be HOST:PORT"),
    (lambda t: t.replace('listen = "127.0.0.1:7443"', 'listen = "127.0.0.1:65536"'),
     "[bridge] listen: listen address must be HOST:PORT"),
    (lambda t: t.replace('party = "alpha"', 'party = "Alpha Team"'), "[bridge] party: a party"),
    (lambda t: t.replace("# allowed_uids = [1001, 0]", "allowed_uids = [1001, -1]"),
     "[local] allowed_uids[1] must be greater than or equal to 0, not -1"),
    (lambda t: t + '\n[peers.beta]\nurl = "ftp://127.0.0.1:21/x"\nfingerprint = "AB"\n',
     "[peers.beta] url: a peer URL must be http(s)://HOST:PORT"),
    (lambda t: t + '\n[peers.beta]\nurl = "http://127.0.0.1:7444"\n',
     "[peers.beta] fingerprint is missing"),
    (lambda t: t + '\n[peers.Beta]\nurl = "http://127.0.0.1:7444"\nfingerprint = "AB"\n',
     "[peers.Beta]"),
    (lambda t: t.replace('party = "alpha"\n', ""), "[bridge] party is missing"),
    (lambda t: t + '\n[peers.beta]\nurl = "https://127.0.0.1:7444"\nfingerprint = "AB"\n'
                   'tls_fingerprint = "not-a-digest"\n',
     "[peers.beta] tls_fingerprint: a TLS certificate fingerprint is the SHA-256"),
    (lambda t: t.replace("[delivery]", "delivery = 3\n[delivered]"),
     "[bridge] 'delivery' is not a known key"),
])
def test_a_value_out_of_range_or_of_no_use_is_named(tmp_path, edit, named) -> None:
    home, text = _config(tmp_path)
    assert named in _problem(home, edit(text))


def test_a_missing_bridge_section_is_named(tmp_path: Path) -> None:
    home, _ = _config(tmp_path)
    assert "[bridge] is missing" in _problem(home, "[tls]\nenabled = true\n")


def test_listen_port_zero_asks_for_any_free_port(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.init("alpha", listen="127.0.0.1:0")
    assert home.config().listen == "127.0.0.1:0"


@pytest.mark.parametrize("name", ["bridge-0.1.0.toml", "bridge-0.1.0-early.toml"])
def test_a_file_written_by_bridge_0_1_0_still_loads(tmp_path: Path, name: str) -> None:
    """The files 0.1.0 wrote: its last layout, and its first (``max_body_bytes`` in
    ``[bridge]``, before ``[limits]``, ``[tls]`` and ``[local]`` existed)."""
    home = Home(tmp_path / "h")
    home.path.mkdir()
    home.config_path.write_text((FIXTURES / name).read_text())
    cfg = home.config()
    home.write_config(cfg)  # and what this Bridge writes back says the same
    assert home.config() == cfg
    if name == "bridge-0.1.0.toml":
        assert cfg.tls_enabled and cfg.allowed_uids == (1001, 0)
        assert cfg.peers["beta"].tls_fingerprint == "ab" * 32
        assert sorted(cfg.peers) == ["beta", "gamma"] and cfg.max_body_bytes == 64 * 1024 * 1024
    else:
        assert cfg.max_body_bytes == 1048576 and cfg.delivery.chunk_items == 1000
        assert cfg.peers["alpha"].url == "http://10.1.2.3:7443" and not cfg.tls_enabled
        assert "max_body_bytes = 1048576" in home.config_path.read_text().split("[limits]")[1]


def test_a_peer_filed_under_another_name_is_refused() -> None:
    beta = PeerConfig(name="beta", url="http://127.0.0.1:7444", fingerprint="AB")
    with pytest.raises(ValueError, match="'beta' is filed under 'gamma'"):
        Config(party="alpha", listen="127.0.0.1:7443", peers={"gamma": beta})


def test_log_flooding_by_a_config_file_of_long_keys_and_values_makes_a_bounded_error(
        tmp_path: Path) -> None:
    """A 64 KiB key, value or peer name in the file is quoted cut and escaped, and 100 bad
    keys are listed 20 at most: the error (and the daemon's log line of it) stays short."""
    home, text = _config(tmp_path)
    long = "Q" * 65536 + "\\u001b[2J"  # ESC, as TOML writes it in a string
    text = text.replace("in_flight = 8", f'in_flight = "{long}"\n"{long}" = 1')
    text += f'\n[peers."{long}"]\nurl = 5\n' + "".join(f"k{n} = 1\n" for n in range(100))
    message = _problem(home, text)
    assert "in_flight must be" in message and "\x1b" not in message
    assert "is not a known key" in message and "... and " in message
    assert len(message) < 4000 and max(map(len, message.splitlines())) < 400


def test_log_flooding_by_a_relay_file_of_long_keys_and_values_makes_a_bounded_error() -> None:
    from bridge.transports.relay.mediator import read_config
    long = "Q" * 65536
    with pytest.raises(UsageError) as err:
        read_config({"relay": {long: 1, "listen": long}, **{f"k{n}": 1 for n in range(100)}},
                    "relay.toml")
    message = str(err.value)
    assert "... and " in message
    assert len(message) < 4000 and max(map(len, message.splitlines())) < 400


def test_the_processes_that_check_streams_beside_the_daemon_are_set_and_bounded(
        tmp_path: Path) -> None:
    home, text = _config(tmp_path)
    assert home.config().check_processes is None  # automatic: bridge/daemon/checkers.py
    home.config_path.write_text(text.replace("# allowed_uids = [1001, 0]\n",
                                             "check_processes = 0\n"))
    cfg = home.config()
    assert cfg.check_processes == 0
    home.write_config(cfg)
    assert home.config() == cfg  # written back as read
    too_many = text.replace("# allowed_uids = [1001, 0]\n", "check_processes = 9\n")
    assert "[local] check_processes must be less than or equal to 8" in _problem(home, too_many)
