"""A real daemon with test hooks that the production daemon cannot be given
(``bridge.daemon.run.DaemonHooks``):

    python tests/daemon/launcher.py HOME [--clock-offset SECONDS] [--max-pages N]
                                         [--relay-skip-acks N] [--hold-acks FILE]

``--clock-offset``: its wall clock that many seconds off (a host with a wrong clock: what a
skew does and what the witness corrects); ``--max-pages``: its store capped at that many pages
(SQLite's ``max_page_count``: a real SQLITE_FULL without filling a disk);
``--relay-skip-acks``: its first N envelopes from the relay left unacked (lost acks);
``--hold-acks``: each acknowledgement waits, where its work runs, until FILE exists. The
production daemon's clock is the system's, its store uncapped and its acks sent, whatever its
environment, home or options say: only this launcher, which is not part of the package,
hands ``run_daemon`` the hooks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.daemon.hooks import DaemonHooks
from bridge.daemon.run import run_daemon
from bridge.engine.ports import Clock, system_clock
from bridge.home.folder import Home

HERE = Path(__file__)


def command(home: Path, *, clock_offset: float | None = None, max_pages: int | None = None,
            relay_skip_acks: int = 0, hold_acks: Path | None = None) -> list[str]:
    """The command line that starts the daemon of ``home`` with these hooks."""
    argv = [sys.executable, str(HERE), str(home)]
    if clock_offset is not None:
        argv += ["--clock-offset", repr(float(clock_offset))]
    if max_pages is not None:
        argv += ["--max-pages", str(int(max_pages))]
    if relay_skip_acks:
        argv += ["--relay-skip-acks", str(int(relay_skip_acks))]
    if hold_acks is not None:
        argv += ["--hold-acks", str(hold_acks)]
    return argv


def offset_clock(offset_seconds: float) -> Clock:
    offset_ms = int(offset_seconds * 1000)
    return lambda: system_clock() + offset_ms


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("home", type=Path)
    parser.add_argument("--clock-offset", type=float)
    parser.add_argument("--max-pages", type=int)
    parser.add_argument("--relay-skip-acks", type=int, default=0)
    parser.add_argument("--hold-acks", type=Path)
    args = parser.parse_args(argv)
    run_daemon(Home(args.home), hooks=DaemonHooks(
        clock=offset_clock(args.clock_offset) if args.clock_offset is not None else None,
        max_pages=args.max_pages, relay_skip_acks=args.relay_skip_acks,
        hold_acks=args.hold_acks))


if __name__ == "__main__":
    main(sys.argv[1:])
