"""What every ``bridge`` command is given: the home folder it works on (``--home``), and the one
way to reach that home's daemon (its local API, through :class:`bridge.client.BridgeClient`).
Errors from the daemon are reported by :func:`bridge.cli.exits.reporting`, as every other."""

from __future__ import annotations

from pathlib import Path

from bridge.client import BridgeClient
from bridge.home.folder import Home


def daemon_client(home: Home) -> BridgeClient:
    """A client of the daemon of ``home``, over its Unix socket (nothing is opened yet)."""
    return BridgeClient(home.socket_path)


class Ctx:
    """The click context object of the ``bridge`` group (``ctx.obj``)."""

    def __init__(self, home: Path) -> None:
        self.home = Home(home)

    def client(self) -> BridgeClient:
        return daemon_client(self.home)


__all__ = ["Ctx", "daemon_client"]
