"""What one single-item round trip costs on the database thread, counted, not timed: the SQL
statements each side runs and the audit records it appends, with the CPU seconds the whole
round trip takes. Two engines in one process (the test harness, ``tests/harness``), each on its
own real SQLite file: submit a one-item manifest at alpha, carry its envelopes to beta and
the answers back as the daemon's delivery loop does, acknowledge it at beta, carry the
acknowledgement back the same way.

    python bench/round_trip_cost.py [--rounds 50] [--suite 2] [--statements] [--profile N]

``--statements`` lists each distinct statement with its count per round trip (most frequent
first), to see which ones an operation could do without; ``--profile N`` prints cProfile's
top N functions by cumulative time over the measured rounds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness import Harness, Party, open_pair, person, wire  # noqa: E402

from bridge.core.crypto import suites  # noqa: E402
from bridge.core.crypto.identity import PrivateIdentity  # noqa: E402
from bridge.store.sqlite.audit_log import AuditLog  # noqa: E402

CREATED = 1_767_225_600_000
WARM_UP = 3  # rounds before counting: the first pays for caches and the first checkpoints


# SQLite hands the trace its statements with the values bound: put the placeholders back, so
# that one statement run with other values is counted as the same statement.
_LITERAL = re.compile(r"x'[0-9a-fA-F]*'|'(?:[^']|'')*'|(?<![\w.])-?\d+(?![\w.])|(?<=stage_)\d+")


def normalised(sql: str) -> str:
    return _LITERAL.sub("?", re.sub(r"\s+", " ", sql.strip()))


class Counts:
    """Statements per side (``set_trace_callback``) and audit appends per side."""

    def __init__(self) -> None:
        self.statements: dict[str, Counter[str]] = {"alpha": Counter(), "beta": Counter()}
        self.appends: Counter[str] = Counter()
        self.on = False

    def tracer(self, side: str):  # type: ignore[no-untyped-def]
        counter = self.statements[side]

        def trace(sql: str) -> None:
            if self.on:
                counter[sql] += 1  # normalised once at the end: the trace stays cheap
        return trace

    def per_statement(self, side: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for sql, k in self.statements[side].items():
            out[normalised(sql)] += k
        return out


@contextmanager
def counting_appends(counts: Counts, sides: dict[int, str]) -> Iterator[None]:
    """Every ``append_audit`` counted by side (the store's connection says which)."""
    original = AuditLog.append_audit

    def counted(self, **kw):  # type: ignore[no-untyped-def]
        if counts.on:
            counts.appends[sides.get(id(self._conn), "?")] += 1
        return original(self, **kw)

    AuditLog.append_audit = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        AuditLog.append_audit = original  # type: ignore[method-assign]


def carry(sender: Party, receiver: Party) -> None:
    """Every pending envelope of ``sender`` to the receiver and its answer back, as the
    daemon's delivery loop takes them (``Exchange.tried``: the attempt counted with the
    answer, one transaction)."""
    while (row := sender.engine.next_pending(receiver.name)) is not None:
        answer = wire.receive(receiver.engine, row.envelope)
        outcome = sender.engine.tried(row, answer.body, "HTTP 200")
        if outcome.state.value != "delivered":
            raise SystemExit(f"envelope {row.seq} to {receiver.name}: {outcome}")


def one_round(h: Harness, n: int, counts: Counts | None) -> None:
    doc_id = f"RT-{n:05d}"
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id=doc_id)
    carry(h.alpha, h.beta)
    wire.acknowledge(h.beta.engine, doc_id, all="RECEIVED")
    carry(h.beta, h.alpha)
    on, counts_on = (counts.on, counts) if counts else (False, None)
    if counts_on:
        counts_on.on = False  # the bench's own check is not the round trip's
    state = wire.document(h.alpha.engine, doc_id)["state"]
    if counts_on:
        counts_on.on = on
    if state != "acknowledged":
        raise SystemExit(f"{doc_id} not acknowledged at alpha after the round trip")


def identity(party: str, suite_id: int) -> PrivateIdentity:
    suite = suites.by_number(suite_id)
    assert suite is not None
    return PrivateIdentity.generate(party, created=CREATED, suite=suite)


def measure(rounds: int, suite_id: int, profile: int, sort: str = "cumulative"
            ) -> tuple[Counts, float]:
    """Counts over ``rounds`` round trips traced, then CPU over as many more untraced (the
    trace costs more than some of what it counts)."""
    counts = Counts()
    with tempfile.TemporaryDirectory(prefix="bridge-rtcost-") as tmp, \
            open_pair(Path(tmp), identity("alpha", suite_id), identity("beta", suite_id)) as h:
        conns = {party.name: wire.sql(party.engine) for party in (h.alpha, h.beta)}
        sides = {id(conn): name for name, conn in conns.items()}
        with counting_appends(counts, sides):
            for n in range(WARM_UP):
                one_round(h, n, counts)
            for name, conn in conns.items():
                conn.set_trace_callback(counts.tracer(name))
            counts.on = True
            for n in range(WARM_UP, WARM_UP + rounds):
                one_round(h, n, counts)
            counts.on = False
        for conn in conns.values():
            conn.set_trace_callback(None)
        profiler = cProfile.Profile(time.process_time) if profile else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        for n in range(WARM_UP + rounds, WARM_UP + 2 * rounds):
            one_round(h, n, None)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        if profiler:
            pstats.Stats(profiler).sort_stats(sort).print_stats(profile)
    return counts, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--suite", type=int, choices=(1, 2), default=2,
                        help="both parties' key suite (PROTOCOL.md §3.1)")
    parser.add_argument("--statements", action="store_true",
                        help="list each statement with its count per round trip")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print cProfile's top N functions (adds overhead to the CPU)")
    parser.add_argument("--sort", default="cumulative", choices=("cumulative", "tottime"),
                        help="the profile's order")
    args = parser.parse_args()
    counts, cpu = measure(args.rounds, args.suite, args.profile, args.sort)
    per = args.rounds
    total = sum(sum(c.values()) for c in counts.statements.values())
    print(f"rounds: {per}, suite {args.suite}")
    for side, counter in counts.statements.items():
        print(f"  {side}: {sum(counter.values()) / per:6.1f} statements, "
              f"{counts.appends[side] / per:4.1f} audit appends per round trip")
    print(f"  both: {total / per:6.1f} statements, "
          f"{sum(counts.appends.values()) / per:4.1f} audit appends per round trip")
    print(f"  CPU per round trip: {cpu / per * 1000:.1f} ms"
          + (" (under the profiler)" if args.profile else ""))
    if args.statements:
        for side in counts.statements:
            print(f"\n{side}: statements per round trip")
            for sql, k in counts.per_statement(side).most_common():
                print(f"  {k / per:6.2f}  {sql[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
