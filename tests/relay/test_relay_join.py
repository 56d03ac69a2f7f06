"""A party's side against the mediator's real relay (``relay init`` + ``relay run``): each
party joins with the credential file the mediator handed it, pins the other ``--via relay``,
and two real daemons exchange through it with no TCP port open; the relay's own restart of a
killed nats-server is survived."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from bridge.daemon.pair import Node
from bridge.home.folder import Home

# The mediator's test relay (tests/relay/mediator.py) is imported where it is used: this
# folder's helpers are found on the tests' path, whatever an import sorter makes of them.
Relay = Any


def bridge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--home", str(home), *args],
                          capture_output=True, text=True, check=False, timeout=120)


def _party(tmp_path: Path, relay: Relay, name: str, *extra: str) -> Home:
    home = tmp_path / name
    assert bridge(home, "init", "--party", name).returncode == 0
    joined = bridge(home, "relay", "join", relay.url, "--creds", str(relay.creds(name)),
                    *extra)
    assert joined.returncode == 0, joined.stderr
    assert "Joined the relay" in joined.stdout
    return Home(home)


def test_parties_join_the_mediators_relay_and_exchange_with_no_port_open(
        tmp_path: Path, relay: Relay) -> None:
    from daemon.conftest import person, wait_for
    from daemon.relay_fixtures import listening_tcp_ports

    homes = {name: _party(tmp_path, relay, name) for name in ("alpha", "bravo")}
    for name, home in homes.items():
        assert stat.S_IMODE(home.relay_creds_path.stat().st_mode) == 0o600
        cfg = home.config()
        assert cfg.listen is None and cfg.relay is not None and cfg.relay.url == relay.url
    for me, other in (("alpha", "bravo"), ("bravo", "alpha")):
        pub = homes[other].public_key_path(other)
        fp = homes[other].public_identity().fingerprint
        added = bridge(homes[me].path, "peer", "add", str(pub), "--fingerprint", fp,
                       "--via", "relay")
        assert added.returncode == 0, added.stderr
        assert homes[me].config().peers[other].via == "relay"
        assert homes[me].config().peers[other].url is None
    nodes = [Node(home=homes[n], party=n, log_path=tmp_path / f"{n}.log", via="relay")
             for n in ("alpha", "bravo")]
    try:
        for node in nodes:
            node.start()
            assert node.proc is not None and listening_tcp_ports(node.proc.pid) == []
        alpha, bravo = (n.client for n in nodes)
        alpha.submit_document("roster", "bravo", [person(i) for i in range(8)], id="R-1")
        wait_for(lambda: any(d["id"] == "R-1" for d in bravo.documents(direction="in")),
                 what="bravo to receive the roster through the relay")
        relay.kill_server()  # the relay restarts its nats-server; the parties reconnect
        bravo.acknowledge("R-1", all="RECEIVED")
        wait_for(lambda: alpha.document("R-1")["items"]["acknowledged"] == 8,
                 what="alpha to see every acknowledgement")
        doctor = bridge(homes["alpha"].path, "doctor")
        assert "not listening (no TCP port)" in doctor.stdout
        assert "the daemon is connected" in doctor.stdout
    finally:
        for node in nodes:
            node.stop()


def test_a_party_joins_the_mediators_tls_relay_pinning_its_certificate(tmp_path: Path) -> None:
    from daemon.conftest import wait_for

    from relay.mediator import running_relay

    with running_relay(tmp_path / "mediator", ["alpha", "bravo"], tls=True) as relay:
        assert relay.url.startswith("tls://")
        assert bridge(tmp_path / "x", "init", "--party", "alpha").returncode == 0
        without = bridge(tmp_path / "x", "relay", "join", relay.url, "--creds",
                         str(relay.creds("alpha")))
        assert without.returncode != 0 and "--tls-ca" in without.stdout + without.stderr
        home = _party(tmp_path, relay, "alpha", "--tls-ca", str(relay.cert))
        node = Node(home=home, party="alpha", log_path=tmp_path / "alpha.log", via="relay")
        try:
            node.start()
            wait_for(lambda: node.client.health()["relay"]["state"] == "connected",
                     what="alpha connected to the TLS relay through the pinned certificate")
        finally:
            node.stop()
