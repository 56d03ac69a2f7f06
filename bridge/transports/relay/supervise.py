"""``relay run``: the mediator's NATS server as a child process, kept running.

- At each start the server's configuration is written from relay.toml, the server is waited
  for until its admin user can connect, and every party's stream and consumer is created or
  brought to the configuration (so a server that lost its store comes back with empty streams,
  never with none).
- A server that exits on its own (a crash, kill -9) is started again after a backoff that
  doubles up to 30 s and is reset by a run of a minute; each exit and restart is a log line.
  A listen port 0 becomes the port the first start got, kept for the restarts: the parties'
  URL stays the same.
- SIGTERM or SIGINT stops the server cleanly (SIGTERM, then SIGKILL after a grace period) and
  ends the run; SIGHUP re-reads relay.toml (a party added), has the server reload its
  configuration and ensures the streams again.
- ``M/relay.state.json`` says who runs: this process, the server's pid, its port and URL,
  how many times it started; removed at a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge.core.errors import BridgeError, UsageError
from bridge.home.files import write_file
from bridge.transports.relay import admin
from bridge.transports.relay.mediator import MediatorHome, RelayConfig
from bridge.transports.relay.server import (
    ANY_PORT,
    ServerBinary,
    admin_tls,
    configured_port,
    read_ports_file,
    url_of,
    write_server_config,
)

log = logging.getLogger("bridge.relay")

# Linux's prctl(PR_SET_PDEATHSIG): the server is sent SIGTERM when relay run dies, even by
# kill -9, so that no orphaned server keeps the port (and serves an old configuration).
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """What the child runs between fork and exec (only a system call: no lock is taken)."""
    if _LIBC is None:
        return None
    libc = _LIBC

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call: die now
            os._exit(1)
    return arm


def running_elsewhere(home: MediatorHome) -> int | None:
    """The pid of another live ``relay run`` of this home (from its state file), if any."""
    try:
        pid = int(json.loads(home.state_path.read_text("utf-8"))["relay_pid"])
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid != os.getpid() and b"relay" in words and b"run" in words else None


@dataclass(frozen=True, kw_only=True)
class Timing:
    ready_timeout: float = 30.0
    stop_grace: float = 15.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    stable_after: float = 60.0


@dataclass
class RunState:
    """What ``M/relay.state.json`` says, kept as it changes."""

    port: int
    server_pid: int | None = None
    starts: int = 0
    reloads: int = 0
    backoff: float = 0.0
    last_start: float = field(default=0.0)


RELOAD_TRIES = 6  # 0.2 s doubling: about 6 s in all before a reload is said to be incomplete


class ServerDied(UsageError):
    """The server exited before it was ready."""


class Supervisor:
    def __init__(self, home: MediatorHome, binary: ServerBinary,
                 timing: Timing | None = None) -> None:
        self.home = home
        self.binary = binary
        self.timing = timing or Timing()
        self.config: RelayConfig = home.config()
        self.state = RunState(port=configured_port(self.config))
        self.stop = asyncio.Event()
        self.reload = asyncio.Event()

    # -------------------------------------------------------------- one server

    async def _spawn(self) -> asyncio.subprocess.Process:
        conf = write_server_config(self.home, self.config, self.state.port)
        proc = await asyncio.create_subprocess_exec(
            str(self.binary.path), "-c", str(conf), stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent(os.getpid()))
        self.state.server_pid, self.state.last_start = proc.pid, time.monotonic()
        self.state.starts += 1
        return proc

    async def _await_ready(self, proc: asyncio.subprocess.Process) -> None:
        """Until the admin user has connected and ensured every stream; ``ServerDied`` when the
        server exits first, ``UsageError`` when it is not ready in time."""
        deadline = time.monotonic() + self.timing.ready_timeout
        last: BridgeError | None = None
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise ServerDied(f"nats-server exited with status {proc.returncode} before it "
                                 f"was ready (see {self.home.logs_dir / 'nats-server.log'})")
            port = self.state.port
            if port == ANY_PORT:
                port = read_ports_file(self.home, proc.pid) or ANY_PORT
            if port != ANY_PORT:
                try:
                    await self._ensure(port)
                except BridgeError as exc:
                    last = exc
                else:
                    self.state.port = port  # a port 0 is kept from now on
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.1)
        raise UsageError(f"nats-server was not ready within {self.timing.ready_timeout:g} s"
                         + (f": {last}" if last else ""))

    async def _ensure(self, port: int) -> None:
        nc = await admin.connect_admin(url_of(self.config, port), str(self.home.admin_creds),
                                       tls=admin_tls(self.home, self.config))
        try:
            await admin.ensure_all(nc, self.config)
        finally:
            await nc.close()

    async def _await_users(self, parties: list[str]) -> None:
        """Until each of ``parties`` (added by this reload) can connect: the server applies a
        reload on its own time, and the state file must not say "reloaded" before it has."""
        url = url_of(self.config, self.state.port)
        deadline = time.monotonic() + self.timing.ready_timeout
        for party in parties:
            while True:
                try:
                    nc = await admin.connect_user(url, str(self.home.creds_path(party)),
                                                  name="bridge-relay-reload-check",
                                                  tls=admin_tls(self.home, self.config))
                except BridgeError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
                else:
                    await nc.close()
                    break

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.timing.stop_grace)
            except TimeoutError:
                log.warning("relay: nats-server (pid %d) did not stop within %g s; killing it",
                            proc.pid, self.timing.stop_grace)
                proc.kill()
                await proc.wait()

    # -------------------------------------------------------------- the run

    def _write_state(self, *, ready: bool) -> None:
        body = {"relay_pid": os.getpid(), "server_pid": self.state.server_pid,
                "port": self.state.port if self.state.port != ANY_PORT else None,
                "url": url_of(self.config, self.state.port) if ready else None,
                "ready": ready, "starts": self.state.starts, "reloads": self.state.reloads}
        write_file(self.home.state_path, json.dumps(body, indent=2) + "\n", replace=True)

    async def _reload(self, proc: asyncio.subprocess.Process) -> None:
        self.reload.clear()
        before = {*self.config.parties, *self.config.witnesses}
        try:
            self.config = self.home.config()
        except BridgeError as exc:
            log.error("relay: relay.toml not reloaded: %s", exc)
            return
        write_server_config(self.home, self.config, self.state.port)
        proc.send_signal(signal.SIGHUP)
        self.state.reloads += 1
        # The server reloads its users on the signal, in its own time: a connection made while
        # it does may be refused ("Authorization Violation"). Try again, a few times.
        for attempt in range(RELOAD_TRIES):
            try:
                await self._ensure(self.state.port)
                await self._await_users(sorted({*self.config.parties, *self.config.witnesses}
                                               - before))
                break
            except BridgeError as exc:
                if attempt == RELOAD_TRIES - 1:
                    log.error("relay: the reload is not complete: %s", exc)
                else:
                    log.info("relay: the server is still reloading (%s); trying again", exc)
                    await asyncio.sleep(0.2 * 2 ** attempt)
        self._write_state(ready=True)
        log.info("relay: configuration reloaded: %d parties, %d pairs",
                 len(self.config.parties), len(self.config.pairs()))

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Until the server exits or a stop is asked; reloads on the way."""
        while True:
            waits = {asyncio.ensure_future(proc.wait()), asyncio.ensure_future(self.stop.wait()),
                     asyncio.ensure_future(self.reload.wait())}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            if proc.returncode is not None or self.stop.is_set():
                return
            await self._reload(proc)

    def _next_backoff(self) -> float:
        if time.monotonic() - self.state.last_start >= self.timing.stable_after:
            self.state.backoff = 0.0
        self.state.backoff = min(self.timing.max_backoff,
                                 max(self.timing.initial_backoff, 2 * self.state.backoff))
        return self.state.backoff

    async def _start_once(self) -> asyncio.subprocess.Process:
        proc = await self._spawn()
        try:
            await self._await_ready(proc)
        except BaseException:
            await self._terminate(proc)
            raise
        self._write_state(ready=True)
        log.info("relay: nats-server %s ready (pid %d) on %s: %d parties, %d pairs",
                 self.binary.version_text, proc.pid, url_of(self.config, self.state.port),
                 len(self.config.parties), len(self.config.pairs()))
        return proc

    async def run(self) -> None:
        """Run until stopped. A first start that fails is an error (the operator has
        something to fix); after that, every exit is followed by a restart."""
        proc = await self._start_once()
        try:
            while True:
                await self._watch(proc)
                if self.stop.is_set():
                    return
                self._write_state(ready=False)
                delay = self._next_backoff()
                log.warning("relay: nats-server (pid %d) exited with status %s; restarting in "
                            "%.1f s", proc.pid, proc.returncode, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                if self.stop.is_set():
                    return
                try:
                    proc = await self._start_once()
                except BridgeError as exc:
                    log.error("relay: restart failed: %s", exc)
        finally:
            await self._terminate(proc)
            self.home.state_path.unlink(missing_ok=True)
            log.info("relay: nats-server stopped")


async def run_relay(home: MediatorHome, binary: ServerBinary,
                    timing: Timing | None = None) -> None:
    """``relay run``: the supervisor, with SIGTERM and SIGINT to stop it, SIGHUP to reload.
    Refused while another ``relay run`` of the same home is alive."""
    other = running_elsewhere(home)
    if other is not None:
        raise UsageError(f"a relay run (pid {other}) already runs on {home.path}; stop it "
                         "first (SIGTERM)")
    supervisor = Supervisor(home, binary, timing)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop.set)
    loop.add_signal_handler(signal.SIGHUP, supervisor.reload.set)
    try:
        await supervisor.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


__all__ = ["Supervisor", "Timing", "run_relay", "running_elsewhere"]
