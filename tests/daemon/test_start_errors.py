"""A daemon that cannot start says why, in one line, and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from collections.abc import Callable

from bridge.daemon.pair import LOOPBACK, Node


def test_port_in_use_is_a_clear_error_and_leaves_no_stale_socket(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _ = make_nodes()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))  # a port held for as long as the test needs it
        squatter.listen()
        taken = squatter.getsockname()[1]
        alpha.home.write_config(dataclasses.replace(alpha.home.config(),
                                                    listen=f"{LOOPBACK}:{taken}"))
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "--home", str(alpha.home.path), "daemon"],
            capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert f"cannot listen on {LOOPBACK}:{taken}" in done.stderr
    assert "bridge.toml" in done.stderr
    assert not alpha.home.socket_path.exists()
