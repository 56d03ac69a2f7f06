"""``bridge.home.files``: the one way Bridge writes a file (0600, a fresh temporary file of a random
name opened O_EXCL|O_NOFOLLOW, fsync, rename; no symbolic link followed; an existing file only
replaced when asked). Real files in a temporary folder; the only thing patched is the random
name (to plant a link exactly where the writer will look) and, once, a failing fsync."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.core.errors import UsageError
from bridge.home import files
from bridge.home.files import FileExistsRefused, create_private, make_private, write_file


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("not yours")
    path.chmod(0o644)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.usefixtures("permissive_umask")
def test_written_file_is_0600_even_under_umask_0(tmp_path: Path) -> None:
    out = tmp_path / "out.receipt"
    write_file(out, b"\x00\x01receipt")
    assert out.read_bytes() == b"\x00\x01receipt"
    assert mode(out) == 0o600
    write_file(out, "text, as UTF-8: \u00e9", replace=True)
    assert out.read_text(encoding="utf-8") == "text, as UTF-8: \u00e9"
    assert mode(out) == 0o600


def test_existing_file_is_refused_without_replace_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("earlier")
    out.chmod(0o644)
    with pytest.raises(FileExistsRefused, match=r"already exists.*--force"):
        write_file(out, b"new")
    assert out.read_text() == "earlier" and mode(out) == 0o644
    assert leftovers(tmp_path) == []
    write_file(out, b"new", replace=True)
    assert out.read_bytes() == b"new" and mode(out) == 0o600  # replaced, not rewritten


@pytest.mark.parametrize("replace", [False, True])
def test_symlink_at_the_target_is_never_written_through(tmp_path: Path, victim: Path,
                                                        replace: bool) -> None:
    link = tmp_path / "out.receipt"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        write_file(link, b"stolen", replace=replace)
    assert victim.read_text() == "not yours" and mode(victim) == 0o644
    assert link.is_symlink()
    dangling = tmp_path / "dangling.receipt"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(UsageError, match="symbolic link"):
        write_file(dangling, b"stolen", replace=replace)
    assert not (tmp_path / "would-be-created").exists()


def test_planted_symlink_at_the_old_tmp_name_is_ignored(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "alpha-beta.transcript"
    (tmp_path / "alpha-beta.transcript.tmp").symlink_to(victim)
    write_file(out, b"transcript")
    assert out.read_bytes() == b"transcript" and mode(out) == 0o600
    assert victim.read_text() == "not yours" and mode(victim) == 0o644


def test_planted_symlink_at_the_very_temp_name_chosen_is_never_opened(
        tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a guessed random name only makes the writer draw another (O_EXCL|O_NOFOLLOW)."""
    names = iter(["planted", "planted", "fresh"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda _n: next(names))
    (tmp_path / ".out.bin.planted.tmp").symlink_to(victim)
    write_file(tmp_path / "out.bin", b"data")
    assert (tmp_path / "out.bin").read_bytes() == b"data"
    assert victim.read_text() == "not yours"
    assert (tmp_path / ".out.bin.planted.tmp").is_symlink()
    assert not (tmp_path / ".out.bin.fresh.tmp").exists()


def test_every_temp_name_taken_is_a_clear_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files.secrets, "token_hex", lambda _n: "same")
    (tmp_path / ".out.bin.same.tmp").write_text("squatter")
    with pytest.raises(UsageError, match="temporary file"):
        write_file(tmp_path / "out.bin", b"data")
    assert not (tmp_path / "out.bin").exists()


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before writing is not what protects the target: the final hard link is, and
    the kernel refuses it atomically when the name exists by then."""
    out = tmp_path / "out.receipt"
    real = files._write_all

    def then_someone_creates_it(fd: int, data: bytes) -> None:
        real(fd, data)
        out.write_text("created meanwhile")

    monkeypatch.setattr(files, "_write_all", then_someone_creates_it)
    with pytest.raises(FileExistsRefused):
        write_file(out, b"ours")
    assert out.read_text() == "created meanwhile"
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bridge.toml"
    out.write_text("old")

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(UsageError, match=r"cannot write .*No space left"):
        write_file(out, b"new", replace=True)
    assert out.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_folder_or_other_non_regular_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match="not a regular file"):
        write_file(tmp_path / "out", b"x", replace=True)


@pytest.mark.usefixtures("permissive_umask")
def test_create_private_makes_or_tightens_a_0600_file_and_refuses_a_link(
        tmp_path: Path, victim: Path) -> None:
    db = tmp_path / "bridge.db"
    create_private(db)
    assert db.read_bytes() == b"" and mode(db) == 0o600
    db.write_bytes(b"data")
    db.chmod(0o644)
    create_private(db)
    assert db.read_bytes() == b"data" and mode(db) == 0o600
    (tmp_path / "link.db").symlink_to(victim)
    with pytest.raises(OSError):
        create_private(tmp_path / "link.db")
    assert mode(victim) == 0o644

    wal = tmp_path / "bridge.db-wal"
    make_private(wal)  # absent: nothing to do
    assert not wal.exists()
    wal.write_bytes(b"")
    wal.chmod(0o644)
    make_private(wal)
    assert mode(wal) == 0o600
    (tmp_path / "bridge.db-shm").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        make_private(tmp_path / "bridge.db-shm")
    assert mode(victim) == 0o644
