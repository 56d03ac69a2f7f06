"""The witness over its two bindings (PROTOCOL.md §13.3, §13.8): what one add-checkpoint round
trip costs over HTTP and through the mediator's relay, against one witness process serving both.

    .venv/bin/python bench/witness_relay.py               # 40 requests, 400 records
    .venv/bin/python bench/witness_relay.py --requests 200 --json

A real relay (``relay init --witness mediator`` and ``relay run``, a real nats-server), a real
witness process (``witness run --listen … --relay …``) and the party's own couriers
(``bridge/witness/couriers.py``) over one real audit log; the requests alternate between the
two bindings on one origin, each extending the last cosigned size, so each is judged, cosigned
and committed. Prints the median round trip of each and their ratio. Synthetic data; a
measurement, never a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import print_figures

from bridge.cli.demo_relay import DemoRelay
from bridge.core import audit, audit_tree
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.notes import witness_wire
from bridge.engine.metrics import Metrics
from bridge.store.sqlite.store import Store
from bridge.transports.relay.link import LinkSettings, RelayLink
from bridge.transports.relay.nkeys import read_seed
from bridge.witness.couriers import HttpWitnessCourier, RelayWitnessCourier, WitnessCourier
from bridge.witness.home import WitnessHome
from bridge.witness.process import WitnessProcess
from bridge.witness.relay import RelaySettings


def _log(path: Path, n: int) -> Store:
    store = Store(path)
    for i in range(n):
        with store.transaction():
            store.append_audit(kind=audit.REFUSAL, peer="beta", body={"i": i},
                               now=1_700_000_000_000 + i)
    return store


async def _measure(store: Store, me: PrivateIdentity, couriers: dict[str, WitnessCourier],
                   requests: int) -> dict[str, list[float]]:
    size, old = store.audit_tree_size(), 0
    runs: dict[str, list[float]] = {name: [] for name in couriers}
    names = sorted(couriers)
    for k in range(1, requests + 1):
        s = size * k // requests
        note = audit_tree.sign_log_checkpoint(me, s, store.audit_root(s))
        body = witness_wire.format_request(old, store.audit_consistency(old, s), note)
        name = names[k % len(names)]
        t = time.perf_counter()
        status, _ctype, answer = await couriers[name].add_checkpoint(body)
        runs[name].append(time.perf_counter() - t)
        assert status == 200, (name, status, answer)
        old = s
    return runs


async def _run(root: Path, relay: DemoRelay, witness: WitnessProcess, store: Store,
               me: PrivateIdentity, requests: int) -> dict[str, list[float]]:
    link = RelayLink(LinkSettings(url=relay.url, seed=read_seed(relay.creds_path("alpha")),
                                  party="alpha"), Metrics())
    task = asyncio.create_task(link.run())
    await link.wait_connected()
    couriers: dict[str, WitnessCourier] = {"http": HttpWitnessCourier(witness.url),
                                           "relay": RelayWitnessCourier(link, "mediator")}
    try:
        return await _measure(store, me, couriers, requests)
    finally:
        for courier in couriers.values():
            await courier.close()
        await link.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _log(root / "alpha.db", max(args.records, args.requests))
        me = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
        relay = DemoRelay(root / "m", ("alpha", "bravo"), ("mediator",))
        relay.start()
        home = WitnessHome(root / "w")
        home.init("mediator")
        state = home.state()
        state.add_origin(me.public, int(time.time()))
        state.close()
        witness = WitnessProcess(home, relay=RelaySettings(
            url=relay.url, creds=relay.creds_path("mediator")))
        witness.start()
        try:
            runs = asyncio.run(_run(root, relay, witness, store, me, args.requests))
        finally:
            witness.stop()
            relay.stop()
            store.close()
    ms = {name: statistics.median(r) * 1000 for name, r in runs.items()}
    out: dict[str, Any] = {"requests": args.requests, "http_ms": round(ms["http"], 2),
                           "relay_ms": round(ms["relay"], 2),
                           "relay_over_http": round(ms["relay"] / ms["http"], 2)}
    print_figures(out, as_json=args.json, width=16)


if __name__ == "__main__":
    main()
