"""A witness run as a child process on 127.0.0.1: for ``bridge demo`` and the tests.

``start_witness(folder, party="mediator", origins=[...identity files])`` creates the witness
home (once), adds the origins, starts ``bridge witness run --listen 127.0.0.1:0`` and waits
for the port it bound. The handle can be stopped, killed (``kill -9``) and started again on
the same port. ``pin_to(home, witness)`` pins it in a party's home (before its daemon starts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from bridge.core.errors import UsageError
from bridge.home.folder import Home
from bridge.witness.home import WitnessHome


class WitnessProcess:
    def __init__(self, home: WitnessHome) -> None:
        self.home = home
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port_file(self) -> Path:
        return self.home.path / "witness.port"

    @property
    def url(self) -> str:
        if self.port is None:
            raise UsageError("the witness has not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def identity_file(self) -> Path:
        return self.home.public_path(self.home.party())

    def start(self, timeout: float = 20.0) -> None:
        self.port_file.unlink(missing_ok=True)
        log = (self.home.path / "witness.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bridge", "--home", str(self.home.path), "witness", "run",
             "--listen", f"127.0.0.1:{self.port or 0}", "--port-file", str(self.port_file)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"the witness did not start (see {self.home.path}/witness.log)")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text().strip())

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


def pin_to(home: Home, witness: WitnessProcess, *, interval_seconds: float | None = None
           ) -> None:
    """Pin a running witness in a party's home (as ``bridge witness pin`` does, with the
    fingerprint read from the witness's own identity file, which is only right where both
    homes are on this machine, as in ``bridge demo`` and the tests)."""
    from bridge.home.key_files import load_public
    from bridge.home.witnesses import pin_witness

    ident = load_public(witness.identity_file)
    pin_witness(home, witness.identity_file, url=witness.url, fingerprint=ident.fingerprint,
                interval_seconds=interval_seconds)


def start_witness(folder: Path, *, party: str = "mediator",
                  origins: Iterable[Path] = ()) -> WitnessProcess:
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
    proc = WitnessProcess(home)
    proc.start()
    return proc


__all__ = ["WitnessProcess", "pin_to", "start_witness"]
