"""A real daemon with test hooks that the production daemon cannot be given:

    python tests/daemon/launcher.py HOME [--clock-offset SECONDS] [--max-pages N]

``--clock-offset``: its wall clock that many seconds off (a host with a wrong clock: what a
skew does and what the witness corrects); ``--max-pages``: its store capped at that many pages
(SQLite's ``max_page_count``: a real SQLITE_FULL without filling a disk). The production
daemon's clock is the system's and its store uncapped, whatever its environment, home or
options say (``bridge.daemon.run.Daemon``): only this launcher, which is not part of the
package, hands ``run_daemon`` the hooks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.daemon.run import run_daemon
from bridge.engine.ports import Clock, system_clock
from bridge.home.folder import Home

HERE = Path(__file__)


def command(home: Path, *, clock_offset: float | None = None,
            max_pages: int | None = None) -> list[str]:
    """The command line that starts the daemon of ``home`` with these hooks."""
    argv = [sys.executable, str(HERE), str(home)]
    if clock_offset is not None:
        argv += ["--clock-offset", repr(float(clock_offset))]
    if max_pages is not None:
        argv += ["--max-pages", str(int(max_pages))]
    return argv


def offset_clock(offset_seconds: float) -> Clock:
    offset_ms = int(offset_seconds * 1000)
    return lambda: system_clock() + offset_ms


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("home", type=Path)
    parser.add_argument("--clock-offset", type=float)
    parser.add_argument("--max-pages", type=int)
    args = parser.parse_args(argv)
    clock = offset_clock(args.clock_offset) if args.clock_offset is not None else None
    run_daemon(Home(args.home), clock=clock, max_pages=args.max_pages)


if __name__ == "__main__":
    main(sys.argv[1:])
