"""Who may touch a home and its local API.

Two fences, as ssh has them:

1. **The folders.** The home, its keys (and the peers' pins under it), its data and its TLS
   folder must belong to the daemon's user (or root) and be closed to group and others. The
   daemon refuses to start otherwise, saying how to fix it. ``Home.init`` creates them 0700.
2. **The socket.** It is created 0600 inside the 0700 home; on top of that the daemon asks the
   kernel who is at the other end of each connection (``SO_PEERCRED``: the uid of the process
   that connected, which it cannot lie about) and answers 403 to anyone not in
   ``[local] allowed_uids`` (default: the daemon's own uid and root).
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.core.errors import UsageError
from bridge.home.folder import Home

log = logging.getLogger("bridge.access")
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def default_allowed_uids() -> frozenset[int]:
    return frozenset({os.geteuid(), 0})


def allowed_uids(configured: Iterable[int] | None) -> frozenset[int]:
    """An explicit list is taken as it is (root is not added: list 0 to allow it)."""
    return default_allowed_uids() if configured is None else frozenset(configured)


def check_private_folder(path: Path, *, what: str) -> None:
    """Refuse a folder that group or others can use, or that another user owns."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return  # created later, 0700
    except OSError as exc:
        raise UsageError(f"cannot inspect {what} {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path} is not a folder")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise UsageError(
            f"Permissions {mode:04o} for {what} '{path}' are too open: it must not be "
            f"accessible by group or others. Bridge refuses to start. Fix: chmod 700 '{path}'")
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise UsageError(
            f"{what} '{path}' belongs to uid {st.st_uid}, not to this user (uid {me}) or root. "
            f"Bridge refuses to start. Fix: chown {me} '{path}' (or run as its owner)")


def check_home(home: Home) -> None:
    """The folder checks of the daemon's start (and of anything else that opens keys)."""
    check_private_folder(home.path, what="home folder")
    check_private_folder(home.keys_dir, what="keys folder")
    check_private_folder(home.peers_dir, what="peer keys folder")
    check_private_folder(home.db_path.parent, what="data folder")
    check_private_folder(home.tls_dir, what="TLS folder")


def peer_uid(request: web.Request) -> int | None:
    """The uid of the process at the other end of a Unix-socket connection, or None."""
    transport = request.transport
    if transport is None:
        return None
    sock: Any = transport.get_extra_info("socket")
    if sock is None or getattr(sock, "family", None) != socket.AF_UNIX:
        return None
    peercred = getattr(socket, "SO_PEERCRED", None)  # Linux; elsewhere: nobody gets in
    if peercred is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, peercred, _UCRED.size)
    except OSError:
        return None
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


def uid_middleware(allowed: frozenset[int]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """403 for a connection whose peer uid is not allowed (or cannot be read: fail closed)."""

    @web.middleware
    async def check_uid(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
        uid = peer_uid(request)
        if uid is None or uid not in allowed:
            log.warning("local API: refused %s %s from uid %s (allowed: %s)", request.method,
                        request.path, "unknown" if uid is None else uid,
                        ", ".join(map(str, sorted(allowed))))
            return web.json_response(
                {"error": {"code": "forbidden",
                           "message": "this user may not use this Bridge daemon's local API "
                                      "(see [local] allowed_uids in bridge.toml)",
                           "field": None}}, status=403)
        return await handler(request)

    return check_uid


__all__ = ["allowed_uids", "check_home", "check_private_folder", "default_allowed_uids",
           "peer_uid", "uid_middleware"]
