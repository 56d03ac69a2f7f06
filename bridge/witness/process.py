"""A witness run as a child process on 127.0.0.1: for ``bridge demo`` and the tests.

``start_witness(folder, party="mediator", origins=[...identity files])`` creates the witness
home (once), adds the origins, starts ``bridge witness run --listen 127.0.0.1:0`` and waits
until it serves. With ``relay=RelaySettings(...)`` it serves through the mediator's relay
too, and with ``listen=False`` only there (no TCP port). The handle can be stopped, killed
(``kill -9``) and started again on the same port. ``pin_to(home, witness)`` pins it in a
party's home (before its daemon starts), at its URL or, with ``via="relay"``, through the relay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from bridge.core.errors import UsageError
from bridge.home.config import VIA_HTTP, WitnessVia
from bridge.home.folder import Home
from bridge.witness.home import WitnessHome
from bridge.witness.relay import RelaySettings


class WitnessProcess:
    def __init__(self, home: WitnessHome, *, relay: RelaySettings | None = None,
                 listen: bool = True) -> None:
        self.home = home
        self.relay = relay
        self.listen = listen
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ready_file(self) -> Path:
        return self.home.path / "witness.ready"

    def _args(self) -> list[str]:
        args = ["--ready-file", str(self.ready_file)]
        if self.listen:
            args += ["--listen", f"127.0.0.1:{self.port or 0}"]
        if self.relay is not None:
            args += ["--relay", self.relay.url, "--creds", str(self.relay.creds)]
            if self.relay.tls_ca is not None:
                args += ["--tls-ca", str(self.relay.tls_ca)]
        return args

    @property
    def url(self) -> str:
        if self.port is None:
            raise UsageError("the witness has not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def identity_file(self) -> Path:
        return self.home.public_path(self.home.party())

    def start(self, timeout: float = 20.0) -> None:
        self.ready_file.unlink(missing_ok=True)
        log = (self.home.path / "witness.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bridge", "--home", str(self.home.path), "witness", "run",
             *self._args()],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"the witness did not start (see {self.home.path}/witness.log)")
            time.sleep(0.05)
        port = json.loads(self.ready_file.read_text("utf-8"))["port"]
        self.port = int(port) if port is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """``kill -9``: nothing is flushed, nothing is closed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pin_to(home: Home, witness: WitnessProcess, *, interval_seconds: float | None = None,
           via: WitnessVia = "http") -> None:
    """Pin a running witness in a party's home (as ``bridge witness pin`` does, with the
    fingerprint read from the witness's own identity file, which is only right where both
    homes are on this machine, as in ``bridge demo`` and the tests)."""
    from bridge.home.key_files import load_public
    from bridge.home.witnesses import pin_witness

    ident = load_public(witness.identity_file)
    pin_witness(home, witness.identity_file, url=witness.url if via == VIA_HTTP else None,
                via=via, fingerprint=ident.fingerprint, interval_seconds=interval_seconds)


def start_witness(folder: Path, *, party: str = "mediator", origins: Iterable[Path] = (),
                  relay: RelaySettings | None = None, listen: bool = True) -> WitnessProcess:
    """A running witness in ``folder`` that witnesses the logs of these identity files."""
    import time as _time

    from bridge.home.key_files import load_public

    home = WitnessHome(folder)
    if not home.config_path.exists():
        home.init(party)
    state = home.state()
    try:
        for path in origins:
            state.add_origin(load_public(path), int(_time.time()))
    finally:
        state.close()
    proc = WitnessProcess(home, relay=relay, listen=listen)
    proc.start()
    return proc


__all__ = ["WitnessProcess", "pin_to", "start_witness"]
