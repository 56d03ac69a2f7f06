"""A real ``nats-server`` for the party's relay tests, configured as the mediator's relay is
(PROTOCOL.md, "Relay binding"): one nkey user per party with exactly the binding's
permissions, an admin user with every right, JetStream with file storage, one work-queue
stream and one durable pull consumer per party. Started and killed as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import UserKey

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def server_binary() -> str:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@dataclass(eq=False)
class Broker:
    """The mediator's broker for ``pairs`` of parties, in ``root``."""

    root: Path
    parties: tuple[str, ...]
    ack_wait: float = 30.0
    tls: tuple[Path, Path] | None = None  # the server's certificate and key (PEM): tls://
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    keys: dict[str, UserKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = self.root / "data"
        for name in (*self.parties, binding.ADMIN_NAME):
            self.keys[name] = UserKey.generate()
        self.config = self.root / "nats.conf"
        self.config.write_text(json.dumps(self._conf(), indent=2))

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{LOOPBACK}:{self.port}"

    def creds(self, party: str) -> Path:
        path = self.root / f"{party}.creds"
        path.write_text(self.keys[party].seed_block())
        os.chmod(path, 0o600)
        return path

    def _conf(self) -> dict[str, Any]:
        users = []
        for party in self.parties:
            perms = binding.party_permissions(party, [p for p in self.parties if p != party])
            users.append({"nkey": self.keys[party].public, "permissions": {
                "publish": {"allow": list(perms.publish)},
                "subscribe": {"allow": list(perms.subscribe)}}})
        users.append({"nkey": self.keys[binding.ADMIN_NAME].public})
        conf: dict[str, Any] = {
            "listen": f"{LOOPBACK}:{self.port}", "max_payload": 8 * 1024 * 1024,
            "jetstream": {"store_dir": str(self.store)}, "authorization": {"users": users}}
        if self.tls is not None:
            conf["tls"] = {"cert_file": str(self.tls[0]), "key_file": str(self.tls[1])}
        return conf

    # ------------------------------------------------------------ the process

    def start(self) -> None:
        log = open(self.root / "nats.log", "ab")
        self.proc = subprocess.Popen([server_binary(), "-c", str(self.config)],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                run(self._set_up())
                return
            except Exception:  # not up yet
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nats-server exited; see {self.root / 'nats.log'}")
                time.sleep(0.1)
        raise RuntimeError("nats-server did not come up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def wipe(self) -> None:
        """The broker lost its data: every stream, message and duplicate record gone."""
        shutil.rmtree(self.store, ignore_errors=True)

    # ------------------------------------------------------------ as the mediator's admin

    async def admin(self) -> nats.NATS:
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls[0]))
        return await nats.connect(self.url, nkeys_seed_str=self.keys[binding.ADMIN_NAME].seed,
                                  connect_timeout=2, allow_reconnect=False, tls=context)

    async def _set_up(self) -> None:
        nc = await self.admin()
        try:
            js = nc.jetstream()
            for party in self.parties:
                stream = binding.stream_name(party)
                await js.add_stream(StreamConfig(
                    name=stream, subjects=[binding.inbound_subjects(party)],
                    retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
                    discard=DiscardPolicy.NEW, duplicate_window=24 * 3600.0))
                await js.add_consumer(stream, ConsumerConfig(
                    durable_name=binding.consumer_name(party), ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait, deliver_policy=DeliverPolicy.ALL,
                    max_deliver=-1, max_ack_pending=1000))
        finally:
            await nc.close()

    def as_admin(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async def go() -> T:
            nc = await self.admin()
            try:
                return await work(nc)
            finally:
                await nc.close()
        return run(go())

    def waiting(self, party: str) -> int:
        """Messages the broker holds for ``party`` (not yet acked)."""
        async def count(nc: Any) -> int:
            info = await nc.jetstream().stream_info(binding.stream_name(party))
            return int(info.state.messages)
        return self.as_admin(count)
