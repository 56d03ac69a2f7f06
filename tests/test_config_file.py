"""bridge.toml is checked whole: an unknown section or key, a value of the wrong type or out of
range is an error that names it, and CONFIGURATION.md documents exactly what the code reads."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from bridge.core.errors import UsageError
from bridge.home.config_schema import reference_markdown
from bridge.home.folder import Config, Delivery, Home

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path) -> tuple[Home, str]:
    home = Home(tmp_path / "h")
    home.init("alpha")
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
    cfg = dataclasses.replace(home.config(), listen='127.0.0.1:7443"\n[tls]\nenabled = true #')
    text = cfg.to_toml()
    assert tomllib.loads(text)["bridge"]["listen"] == cfg.listen
    assert tomllib.loads(text)["tls"]["enabled"] is False
