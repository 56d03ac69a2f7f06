"""``bridge demo``: two bridges on this machine, the whole story, in plain words.

Everything here is synthetic: invented names, invented places, invented numbers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bridge.cli.demo_relay import DemoRelay, connected_tcp_ports, listening_tcp_ports
from bridge.cli.exits import reporting
from bridge.client import BridgeClient
from bridge.core.crypto.identity import Keyring
from bridge.core.receipts import check_receipt
from bridge.home.files import write_file
from bridge.reports.render.html import render_html
from bridge.reports.render.json import from_json
from bridge.reports.render.text import render_text

# The daemons' and the witness's wiring (aiohttp, nats, the configuration model) loads when the
# demo runs, not for bridge --help, which imports every command's module.
if TYPE_CHECKING:
    from bridge.daemon.pair import Node
    from bridge.witness.process import WitnessProcess

SURNAMES = ("Avenor", "Belcastro", "Corvin", "Dunmere", "Elstrand", "Falkrey", "Gorran",
            "Halvik", "Istrel", "Jorvant", "Kestrel", "Lunard")
FIRST = ("Ari", "Bren", "Cael", "Dario", "Emin", "Fenn", "Goran", "Ilya", "Jonas", "Kem")

say = click.echo


def pow_roster(n: int) -> list[dict[str, Any]]:
    return [{"id": f"POW-{i:04d}", "category": "pow", "surname": SURNAMES[i % 12],
             "first_names": f"{FIRST[i % 10]} {FIRST[(i * 3) % 10]}",
             "rank": ("private", "corporal", "sergeant")[i % 3],
             "date_of_birth": f"{1985 + i % 15}-{1 + i % 12:02d}-{1 + i % 27:02d}",
             "service_number": f"AL-{40000 + i * 37}"} for i in range(1, n + 1)]


def remains_manifest(n: int) -> list[dict[str, Any]]:
    return [{"id": f"BAG-{i:04d}", "kind": "remains_package", "body_tag": f"BT-{7000 + i}",
             "recovery_place": "Sector 4 (synthetic)", "recovery_date": "2026-10-02",
             "presumed_affiliation": "beta forces", "estimated_individuals": 1,
             "seal_numbers": [f"SEAL-{90000 + i}"]} for i in range(1, n + 1)]


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise click.ClickException(f"timed out waiting for {what}")


def _received(client: BridgeClient, doc_id: str) -> bool:
    return any(d["id"] == doc_id and d["state"] in ("received", "acknowledged")
               for d in client.documents(direction="in"))


def _set_up(root: Path, relay: DemoRelay | None) -> tuple[Node, Node]:
    from bridge.daemon.pair import make_pair, make_relay_pair

    if relay is None:
        alpha, beta = make_pair(root)
    else:
        creds = {name: relay.creds(name) for name in relay.names}
        alpha, beta = make_relay_pair(root, relay.url, creds)
    say(f"1. Two parties set up in {root}:")
    for node in (alpha, beta):
        pub = node.home.public_identity()
        say(f"   {pub.party:6} fingerprint {pub.fingerprint}")
    say("   Each pinned the other's identity file after comparing fingerprints out of band.")
    if relay is not None:
        say(f"   The mediator runs the relay at {relay.url} (a nats-server) and handed each "
            "party its credential file; both joined it (bridge relay join) and pinned the "
            "other --via relay.")
    return alpha, beta


def _say_doors(alpha: Node, beta: Node) -> None:
    """How the daemons are reached: their endpoints, or (through the relay) no port at all,
    checked from /proc."""
    if alpha.via != "relay":
        say(f"2. Both daemons are running: alpha on {alpha.url}, beta on {beta.url};"
            " local systems talk to them over their Unix sockets.")
        return
    _wait("both daemons to connect to the relay", lambda: all(
        (n.client.health().get("relay") or {}).get("state") == "connected"
        for n in (alpha, beta)))
    open_ports = {n.party: listening_tcp_ports(n.proc.pid) for n in (alpha, beta)
                  if n.proc is not None}
    if any(open_ports.values()):
        raise click.ClickException(f"a party's daemon listens on a TCP port: {open_ports}")
    say("2. Both daemons are running and connected out to the relay; neither listens on any "
        "TCP port (checked in /proc/net/tcp: alpha none, beta none). Local systems talk to "
        "them over their Unix sockets; the mediator sees sealed envelopes and who, when, "
        "how big, never their contents.")


def _send_documents(a: BridgeClient, b: BridgeClient) -> tuple[str, str]:
    """alpha sends a roster and a manifest; beta receives both. Their ids."""
    roster = a.submit_document("roster", "beta", pow_roster(12), id="ROSTER-POW-001",
                               meta={"category": "pow", "agreement": "EXCHANGE-2026-11"})
    manifest = a.submit_document("manifest", "beta", remains_manifest(48),
                                 id="MANIFEST-REMAINS-B7",
                                 meta={"batch": 7, "category": "remains",
                                       "declared": {"remains_package": 48},
                                       "handover_point": "Crossing 3 (synthetic)"})
    say(f"3. alpha sent a prisoner-of-war roster ({roster['items']} persons) and a remains "
        f"manifest (batch 7, {manifest['items']} bags declared); each is signed, "
        "encrypted, and durably queued before the daemon says yes.")
    _wait("beta to receive both documents",
          lambda: _received(b, roster["id"]) and _received(b, manifest["id"]))
    say("4. beta's daemon received both, checked every signature and Merkle proof, and "
        "sent signed transport receipts.")
    return roster["id"], manifest["id"]


def _bag_ack(i: int) -> dict[str, Any]:
    """beta's acknowledgement of bag i of the remains manifest."""
    item_id = f"BAG-{i:04d}"
    if i >= 46:
        return {"id": item_id, "status": "NOT_RECEIVED",
                "reason": "counted 45 bags at the crossing, 48 declared"}
    if i in (3, 19):
        return {"id": item_id, "status": "NOT_OWN_NATIONAL",
                "reason": "identification shows an alpha national",
                "evidence": f"MATCH-REPORT-{i:03d}"}
    if i == 27:
        return {"id": item_id, "status": "DISPUTED",
                "reason": "body tag number on the bag differs from the manifest"}
    if i == 5:
        return {"id": item_id, "status": "PENDING_IDENTIFICATION"}
    return {"id": item_id, "status": "RECEIVED"}


def _acknowledge(b: BridgeClient, roster: str, manifest: str) -> None:
    b.acknowledge(roster, items=[
        *({"id": f"POW-{i:04d}", "status": "RECEIVED"} for i in range(1, 11)),
        {"id": "POW-0011", "status": "ALREADY_EXCHANGED",
         "reason": "released in the exchange of 2026-09-14"},
        {"id": "POW-0012", "status": "CATEGORY_INELIGIBLE",
         "reason": "a civilian, not a prisoner of war"},
    ])
    b.acknowledge(manifest, items=[_bag_ack(i) for i in range(1, 49)])
    b.acknowledge(manifest, items=[{"id": "BAG-0005", "status": "IDENTITY_CONFIRMED",
                                    "evidence": "DNA-MATCH-0005"}])
    say("5. beta acknowledged every item: 10 persons received, 1 already exchanged, "
        "1 a civilian on a prisoner-of-war list; 41 bags received, 3 not received (45 "
        "counted against 48 declared), 2 not beta's own nationals, 1 disputed, and one bag "
        "first pending identification, then identity confirmed by DNA.")


def _show_sender_view(a: BridgeClient, roster: str, manifest: str) -> None:
    _wait("alpha to see every acknowledgement", lambda: (
        a.document(manifest)["items"]["acknowledged"] == 48
        and a.document(roster)["items"]["acknowledged"] == 12
        and a.item(manifest, "BAG-0005")["status"] == "IDENTITY_CONFIRMED"))
    say("6. Every acknowledgement travelled back; alpha now sees, item by item:")
    for doc_id in (roster, manifest):
        summary = a.document(doc_id)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["items"]["by_status"].items()))
        say(f"   {doc_id}: {counts}")
    history = a.item(manifest, "BAG-0005")["history"]
    say("   BAG-0005 history: " + " -> ".join(h["status"] for h in history))


def _export_receipts(a: BridgeClient, root: Path, roster: str,
                     manifest: str) -> dict[Path, bytes]:
    receipts_dir = root / "receipts"
    receipts_dir.mkdir(mode=0o700, exist_ok=True)
    files = {
        "BAG-0027.receipt": a.receipt(manifest, item="BAG-0027"),
        "BAG-0005.receipt": a.receipt(manifest, item="BAG-0005"),
        "POW-0012.receipt": a.receipt(roster, item="POW-0012"),
        "MANIFEST-REMAINS-B7.receipt": a.receipt(manifest),
    }
    for name, data in files.items():
        write_file(receipts_dir / name, data, replace=True)
    say(f"7. Receipts exported to {receipts_dir} (per item, and one for the whole manifest).")
    return {receipts_dir / name: data for name, data in files.items()}


def _wait_witnessed(nodes: list[Node], witness: WitnessProcess) -> None:
    """Until the witness has cosigned each party's whole audit log (checkpoints go out in the
    background; the exchange never waits for them, the demo does, to show a witnessed time)."""
    def cosigned(node: Node) -> bool:
        seen = (node.client.health().get("witnesses") or {}).get(witness.home.party()) or {}
        return seen.get("cosigned_size") is not None and \
            seen["cosigned_size"] >= seen.get("log_size", 0)

    _wait("the mediator's witness to cosign both logs", lambda: all(map(cosigned, nodes)))
    if witness.port is None:
        _say_only_the_broker(nodes, witness)


def _say_only_the_broker(nodes: list[Node], witness: WitnessProcess) -> None:
    """With the witness on the relay, each party's daemon has no TCP connection but the one
    to the broker, and the witness listens on no port: checked from /proc, not assumed."""
    relay = nodes[0].home.config().relay
    assert relay is not None
    port = int(relay.url.rpartition(":")[2])
    seen = {n.party: connected_tcp_ports(n.proc.pid) for n in nodes if n.proc is not None}
    if any(ports != [port] for ports in seen.values()):
        raise click.ClickException(f"a daemon has a TCP connection besides the relay: {seen}")
    if witness.proc is not None and listening_tcp_ports(witness.proc.pid):
        raise click.ClickException("the witness listens on a TCP port")
    say(f"   The witness cosigned both logs through the relay: each daemon's only TCP "
        f"connection is to the relay's port {port}, and the witness listens on no port "
        "(checked in /proc/net/tcp).")


def _verify_receipts(nodes: list[Node], files: dict[Path, bytes],
                     witness: WitnessProcess) -> None:
    """``bridge verify`` on the exported receipts, as anyone holding the identity files can,
    with the mediator's witness: the times it cosigned are neutral, not a party's claim."""
    keys = Keyring.of([n.home.public_identity() for n in nodes])
    say("8. Anyone holding the two public identity files (and the mediator's witness's) can "
        "check them offline, without either daemon; each per-item receipt discloses that item "
        "alone, and says by when each party had logged it, as the witness cosigned:")
    key_args = [arg for n in nodes for arg in ("--keys", str(n.home.public_key_path(n.party)))]
    key_args += ["--witness", str(witness.identity_file)]
    say("   $ bridge verify receipts/*.receipt --keys alpha.pub --keys beta.pub "
        "--witness mediator.pub")
    verified = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "bridge", "verify", *map(str, files), *key_args],
        capture_output=True, text=True, check=False)
    receipts_dir = next(iter(files)).parent
    for line in verified.stdout.splitlines():
        say("   " + line.replace(str(receipts_dir) + "/", ""))
    if verified.returncode != 0 or not all(check_receipt(d, keys).ok for d in files.values()):
        raise click.ClickException("a receipt did not verify:\n" + verified.stderr)


def _reconcile(a: BridgeClient, root: Path, keep: Path | None) -> None:
    report_path = root / "reconciliation.html" if keep is not None else _temp_path(
        "bridge-demo-reconciliation-", ".html")
    report = from_json(a.reconcile(quota=10))
    say("10. alpha's reconciliation (bridge --home alpha reconcile --quota 10):")
    click.echo(render_text(report, width=118), nl=False)
    write_file(report_path, render_html(report), replace=True)
    say(f"   The same as one self-contained HTML page with charts: {report_path}")
    say("   (bridge --home alpha reconcile --quota 10 --format html -o FILE)")


def _story(alpha: Node, beta: Node, witness: WitnessProcess, root: Path,
           keep: Path | None) -> None:
    """Steps 2 to 10, with both daemons running."""
    _say_doors(alpha, beta)
    a, b = alpha.client, beta.client
    roster, manifest = _send_documents(a, b)
    _acknowledge(b, roster, manifest)
    _show_sender_view(a, roster, manifest)
    _wait_witnessed([alpha, beta], witness)
    _verify_receipts([alpha, beta], _export_receipts(a, root, roster, manifest), witness)
    _exchange_persons(a, b)
    say("9. An all-for-all exchange of prisoners of war (agreement EXCHANGE-2026-11, at "
        "least 10 a side): alpha handed over the 10 persons beta had accepted on the "
        "roster, beta handed over 9; each side acknowledged what arrived (one person "
        "declined repatriation).")
    _reconcile(a, root, keep)


def run_demo(keep: Path | None, *, direct: bool = False) -> None:
    root = Path(tempfile.mkdtemp(prefix="bridge-demo-")) if keep is None else keep
    root.mkdir(parents=True, exist_ok=True)
    relay = None if direct else DemoRelay(root / "mediator", ("alpha", "beta"), ("mediator",))
    nodes: list[Node] = []
    witness: WitnessProcess | None = None
    try:
        if relay is not None:
            relay.start()
        nodes = list(_set_up(root, relay))
        witness = _start_witness(root, nodes, relay)
        for node in nodes:
            node.start()
        _story(nodes[0], nodes[1], witness, root, keep)
    finally:
        codes = [node.stop() for node in nodes]
        relay_code = relay.stop() if relay is not None else None
        if witness is not None:
            witness.stop()
    say(f"11. Both daemons stopped cleanly (exit codes {codes[0]} and {codes[1]})"
        + (f", and the mediator's relay (exit code {relay_code})" if relay else "")
        + " and witness.")
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
        say(f"   {root} (the homes, logs and the receipts of step 7) is deleted now; to keep "
            "them, run: bridge demo --keep DIR")
    else:
        say(f"   Everything is kept in {root}: homes, logs, databases, receipts and the "
            "reconciliation report.")


def _start_witness(root: Path, nodes: list[Node], relay: DemoRelay | None) -> WitnessProcess:
    """The mediator's witness (bridge witness init, add-origin, run), pinned by both parties
    (bridge witness pin) before their daemons start: through the relay when there is one (the
    parties reach nothing else), else at its own HTTP address."""
    from bridge.witness.process import pin_to, start_witness
    from bridge.witness.relay import RelaySettings

    origins = [n.home.public_key_path(n.party) for n in nodes]
    if relay is None:
        witness = start_witness(root / "witness", party="mediator", origins=origins)
        for node in nodes:
            pin_to(node.home, witness, interval_seconds=1.0)
        say(f"   The mediator also runs its witness at {witness.url}: each party's daemon "
            "submits its audit log's checkpoints to it, and it cosigns them with its own clock "
            "(C2SP tlog-witness).")
        return witness
    witness = start_witness(root / "witness", party="mediator", origins=origins, listen=False,
                            relay=RelaySettings(url=relay.url,
                                                creds=relay.creds_path("mediator")))
    for node in nodes:
        pin_to(node.home, witness, interval_seconds=1.0, via="relay")
    say("   The mediator also runs its witness, reached through the same relay (bridge witness "
        "run --relay; the parties pinned it with bridge witness pin --via relay): each party's "
        "daemon submits its audit log's checkpoints to it, and it cosigns them with its own "
        "clock (C2SP tlog-witness).")
    return witness


def _temp_path(prefix: str, suffix: str) -> Path:
    """A new empty file of a unique name in the system's temporary folder (mode 0600), for the
    report that outlives the demo's own folder."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


def _exchange_persons(a: BridgeClient, b: BridgeClient) -> None:
    """The persons handed over at the crossing, both ways, and their acknowledgements."""
    meta = {"agreement": "EXCHANGE-2026-11", "category": "pow", "batch": 1}
    ours = [{"id": f"POW-{i:04d}", "kind": "person", "category": "pow"} for i in range(1, 11)]
    theirs = [{"id": f"BPOW-{i:04d}", "kind": "person", "category": "pow",
               "surname": SURNAMES[(i + 5) % 12], "first_names": FIRST[(i + 3) % 10],
               "rank": "private", "service_number": f"BE-{70000 + i * 41}"}
              for i in range(1, 10)]
    a.submit_document("manifest", "beta", ours, id="MANIFEST-POW-A1",
                      meta={**meta, "declared": 10})
    b.submit_document("manifest", "alpha", theirs, id="MANIFEST-POW-B1",
                      meta={**meta, "declared": 9})
    _wait("both sides to receive the handover manifests", lambda: (
        _received(b, "MANIFEST-POW-A1") and _received(a, "MANIFEST-POW-B1")))
    b.acknowledge("MANIFEST-POW-A1", all="RECEIVED")
    a.acknowledge("MANIFEST-POW-B1", items=[
        *({"id": f"BPOW-{i:04d}", "status": "RECEIVED"} for i in range(1, 9)),
        {"id": "BPOW-0009", "status": "DECLINED_REPATRIATION",
         "reason": "declined repatriation before the ICRC delegate"}])
    _wait("alpha to see beta's acknowledgement of the handover", lambda: (
        a.document("MANIFEST-POW-A1", direction="out")["items"]["acknowledged"] == 10))


@click.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the two homes, logs and receipts in this folder.")
@click.option("--direct", is_flag=True,
              help="The two daemons deliver to each other's HTTP endpoint directly, with no "
                   "mediator's relay between them.")
def demo(keep: Path | None, direct: bool) -> None:
    """Two bridges on this machine exchange a roster and a manifest through the mediator's
    relay (a third process), acknowledge every item, export receipts and verify them."""
    with reporting():
        run_demo(keep, direct=direct)


__all__ = ["demo", "pow_roster", "remains_manifest", "run_demo"]
