"""An in-process harness: two engines, each on its own home and real SQLite store file, wired
by an in-memory courier, on a clock the test moves. It shows in milliseconds what the daemon
tests show in seconds for everything that is the engine's (exchange, duplicates, gaps, forks,
rotation, acknowledgements, hostile answers); the daemon tests stay for what only processes,
sockets and HTTP can show.

``wire.py`` is the only module that calls the engine; ``pair.py`` builds the parties and the
courier; ``hostile.py`` signs what an honest peer never would.
"""

from __future__ import annotations

import pytest

# The shared checks are asserts: rewritten like a test's, so a failure shows the values.
pytest.register_assert_rewrite("harness.checks")

from . import hostile, wire  # noqa: E402
from .checks import person  # noqa: E402
from .clock import FakeClock  # noqa: E402
from .pair import Courier, Harness, Party, Trip, open_pair, open_witnessed_pair  # noqa: E402

__all__ = ["Courier", "FakeClock", "Harness", "Party", "Trip", "hostile", "open_pair",
           "open_witnessed_pair", "person", "wire"]
