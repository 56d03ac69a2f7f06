"""Every file Bridge writes is written here, one way (SECURITY.md §4).

A receipt of a whole document or a transcript names every person on it, and key files are
keys: so every file is

1. mode 0600 from birth (never readable by other users, not even for a moment);
2. written to a temporary file of a random name in the target's own folder, created with
   ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a file or symbolic link planted at that name, or at any
   guessable one, is never opened, let alone written through);
3. flushed to disk (``fsync``) and only then put in place by a rename, so a reader or a crash
   sees the old file or the new one, never half of either (the folder is fsync'd too);
4. never written through a symbolic link at the target: a link (or anything that is not a
   regular file) there is refused;
5. never put over an existing file unless the caller asked for it (``replace``; the CLI's
   ``--force``). Without it the final step is a hard link, which the kernel refuses atomically
   when the name exists, so a file that appears meanwhile is not clobbered either.

Only ``os``: no framework, usable from the pure core.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from bridge.core.errors import UsageError

PRIVATE_MODE = 0o600
_TEMP_ATTEMPTS = 8
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Filesystems without hard links (FAT, some network and FUSE mounts) answer one of these.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}


class FileExistsRefused(UsageError):
    """The target exists and the caller did not ask to replace it."""

    code = "file_exists"

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; refusing to overwrite it (give --force to "
                         "replace it)")


def _check_target(path: Path, *, replace: bool) -> None:
    """Refuse a target that is a symbolic link or not a regular file, and an existing one
    unless ``replace``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{path} is a symbolic link; refusing to write through it (give the "
                         "path of a new file, or remove the link)", code="file_is_link")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} exists and is not a regular file; refusing to replace it",
                         code="file_exists")
    if not replace:
        raise FileExistsRefused(path)


def _new_temp(folder: Path, name: str) -> tuple[int, Path]:
    """A new file of a random name beside the target, opened for writing, mode 0600."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = folder / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, _NEW_FILE, PRIVATE_MODE)
        except FileExistsError:
            continue  # taken (or planted): another random name
        os.fchmod(fd, PRIVATE_MODE)  # whatever the umask
        return fd, tmp
    raise UsageError(f"cannot create a temporary file in {folder}: every name tried exists")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _fsync_folder(folder: Path) -> None:
    """The rename is durable only once the folder is on disk too."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def _link_new(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` only if ``path`` does not exist (atomically, by a hard link)."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError as exc:
        raise FileExistsRefused(path) from exc
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        _check_target(path, replace=False)  # best effort where the kernel cannot link
        os.rename(tmp, path)
        return
    os.unlink(tmp)


def _write(target: Path, raw: bytes, *, replace: bool) -> None:
    _write_with(target, lambda fd: _write_all(fd, raw), replace=replace)


def _write_with(target: Path, fill: Callable[[int], None], *, replace: bool) -> None:
    folder = target.parent
    _check_target(target, replace=replace)
    fd, tmp = _new_temp(folder, target.name)
    try:
        try:
            fill(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, target)  # replaces a link planted meanwhile; never follows one
        else:
            _link_new(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def write_file(path: str | os.PathLike[str], data: bytes | str, *,
               replace: bool = False) -> None:
    """Write ``data`` (``str`` as UTF-8) to ``path`` with mode 0600, through a fresh temporary
    file in the same folder, fsync'd, then renamed into place. Refuses a symbolic link or a
    non-regular file at ``path``, and an existing file unless ``replace``; any failure is a
    :class:`UsageError` naming the file, and leaves no temporary file behind."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        _write(target, raw, replace=replace)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}",
                         code="cannot_write") from exc


def write_file_streamed(path: str | os.PathLike[str],
                        produce: Callable[[Callable[[bytes], None]], None], *,
                        replace: bool = False) -> None:
    """As ``write_file``, for data too large to hold: ``produce`` is called with a function
    that appends bytes to the temporary file. Nothing is put at ``path`` unless ``produce``
    returns (an exception it raises leaves no file and no temporary file behind)."""
    def fill(fd: int) -> None:
        def append(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]

        produce(append)
        os.fsync(fd)

    target = Path(path)
    try:
        _write_with(target, fill, replace=replace)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}",
                         code="cannot_write") from exc


def check_writable(path: str | os.PathLike[str], *, replace: bool = False) -> None:
    """Refuse now what ``write_file`` would refuse at ``path`` (a link, a non-regular file, an
    existing file without ``replace``), before any work is done for it."""
    _check_target(Path(path), replace=replace)


def create_private(path: str | os.PathLike[str]) -> None:
    """Make sure ``path`` exists as a regular file of mode 0600 (created empty, never through a
    symbolic link); tighten the mode of one that exists. For files another library then opens
    by name (the SQLite store: its ``-wal`` and ``-shm`` files take the database's mode)."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{path} is not a regular file")
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)


def make_private(path: str | os.PathLike[str]) -> None:
    """Tighten an existing file to 0600 (no-op when absent); a symbolic link is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path} is a symbolic link; refusing to use it") from exc
        raise
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)


def open_private_append(path: str | os.PathLike[str]) -> int:
    """A file descriptor appending to ``path`` (a log), created 0600, never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)
    return fd


__all__ = ["PRIVATE_MODE", "FileExistsRefused", "check_writable", "create_private",
           "make_private", "open_private_append", "write_file", "write_file_streamed"]
