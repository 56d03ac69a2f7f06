"""Two parties, each an engine on its own home and SQLite store, and the in-memory courier
that carries their envelopes: what two daemons and HTTP do, in one thread and milliseconds.

The courier takes the sender's pending envelopes, hands the bytes to the receiver and feeds
the answer back to the sender. A test can put itself between the two at every step: lose an
envelope, lose an answer, deliver twice, or answer in the receiver's place (``Answerer``).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bridge.core.crypto.identity import PrivateIdentity

from . import wire
from .clock import FakeClock
from .wire import Answer, Engine, Home, Outcome, Pending


@dataclass
class Party:
    name: str
    home_path: Path
    clock: FakeClock
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = wire.build_engine(Home(self.home_path), self.clock)

    @property
    def home(self) -> Home:
        return Home(self.home_path)

    @property
    def identity(self) -> PrivateIdentity:
        return wire.identity(self.engine)

    def restart(self) -> None:
        """Stop and start again on the same home and store file (as a daemon restart)."""
        wire.close(self.engine)
        self.engine = wire.build_engine(self.home, self.clock)

    def close(self) -> None:
        wire.close(self.engine)


@dataclass(frozen=True)
class Trip:
    """One envelope carried, and what each side made of it."""

    sender: str
    seq: int
    answer: Answer | None  # None: the envelope was lost on the way
    outcome: Outcome | None  # None: the answer was lost on the way back


# Answers in the receiver's place: given the envelope and the honest receiver's answer
# function (call it to let the real receiver decide), return the answer the sender gets.
Answerer = Callable[[Pending, Callable[[], Answer]], Answer]


# Two fresh homes, made once a run for each pair of identities and copied for each test:
# making one costs a few dozen fsyncs (key files, config, the store's schema), a copy none.
_TEMPLATES: dict[tuple[bytes, bytes, int], Path] = {}


def _template(alpha: PrivateIdentity, beta: PrivateIdentity, chunk_items: int) -> Path:
    key = (alpha.key_id, beta.key_id, chunk_items)
    if key not in _TEMPLATES:
        root = Path(tempfile.mkdtemp(prefix="bridge-harness-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        homes = [wire.make_home(root / ident.party, ident, chunk_items=chunk_items)
                 for ident in (alpha, beta)]
        wire.pin(homes[0], homes[1])
        wire.pin(homes[1], homes[0])
        for home in homes:  # the store's schema and the first key records, then closed
            wire.close(wire.build_engine(home, FakeClock()))
        _TEMPLATES[key] = root
    return _TEMPLATES[key]


def make_pair(root: Path, alpha: PrivateIdentity, beta: PrivateIdentity, *,
              clock: FakeClock | None = None, chunk_items: int = 4) -> tuple[Party, Party]:
    """Two homes under ``root`` that pin each other, with an engine each on ``clock``."""
    clock = clock or FakeClock()
    template = _template(alpha, beta, chunk_items)
    parties = []
    for ident in (alpha, beta):
        shutil.copytree(template / ident.party, root / ident.party)
        parties.append(Party(name=ident.party, home_path=root / ident.party, clock=clock))
    return parties[0], parties[1]


class Courier:
    """Carries envelopes between parties in memory, one at a time or several in flight."""

    def __init__(self, *parties: Party) -> None:
        self.parties = {p.name: p for p in parties}
        self.trips: list[Trip] = []

    def _other(self, sender: Party) -> Party:
        (other,) = (p for p in self.parties.values() if p is not sender)
        return other

    def carry(self, sender: Party, pending: Pending, *, answerer: Answerer | None = None,
              lose_envelope: bool = False, lose_answer: bool = False) -> Trip:
        """Carry one envelope to the other party and its answer back."""
        receiver = self._other(sender)
        answer: Answer | None = None
        outcome: Outcome | None = None
        if not lose_envelope:
            def honest() -> Answer:
                return wire.receive(receiver.engine, pending.data)

            answer = answerer(pending, honest) if answerer is not None else honest()
            if not lose_answer:
                outcome = wire.deliver_answer(sender.engine, pending, answer)
        trip = Trip(sender=sender.name, seq=pending.seq, answer=answer, outcome=outcome)
        self.trips.append(trip)
        return trip

    def step(self, sender: Party, *, answerer: Answerer | None = None,
             lose_envelope: bool = False, lose_answer: bool = False) -> Trip | None:
        """The sender's lowest pending envelope, carried once (None: nothing pending)."""
        pending = wire.next_pending(sender.engine, self._other(sender).name)
        if pending is None:
            return None
        return self.carry(sender, pending, answerer=answerer, lose_envelope=lose_envelope,
                          lose_answer=lose_answer)

    def batch(self, sender: Party, n: int, *, lose: Iterable[int] = ()) -> list[Trip]:
        """Up to ``n`` pending envelopes in flight at once, those at positions ``lose``
        (0-based) lost on the way; each answer fed back in the order sent."""
        lost = set(lose)
        pending = wire.pending_batch(sender.engine, self._other(sender).name, n)
        return [self.carry(sender, p, lose_envelope=k in lost) for k, p in enumerate(pending)]

    def settle(self, *, max_trips: int = 200) -> list[Trip]:
        """Carry in both directions until neither side has anything pending. A trip that
        makes no progress is carried again (the delivery loop retries); ``max_trips``
        bounds a pair that never settles."""
        start = len(self.trips)
        while True:
            moved = False
            for party in self.parties.values():
                while (trip := self.step(party)) is not None:
                    moved = True
                    if len(self.trips) - start > max_trips:
                        raise AssertionError(f"no settling after {max_trips} trips: "
                                             f"{self.trips[-5:]}")
                    assert trip.outcome is not None
                    if not trip.outcome.progress and trip.outcome.state != "rewound":
                        break  # back off: let the other side move first
            if not moved:
                return self.trips[start:]


@dataclass
class Harness:
    alpha: Party
    beta: Party
    courier: Courier
    clock: FakeClock


@contextmanager
def open_pair(root: Path, alpha: PrivateIdentity, beta: PrivateIdentity, *,
              clock: FakeClock | None = None, chunk_items: int = 4) -> Iterator[Harness]:
    """Alpha and beta as a ``Harness``; both engines closed at the end."""
    clock = clock or FakeClock()
    a, b = make_pair(root, alpha, beta, clock=clock, chunk_items=chunk_items)
    try:
        yield Harness(alpha=a, beta=b, courier=Courier(a, b), clock=clock)
    finally:
        a.close()
        b.close()


@contextmanager
def open_witnessed_pair(root: Path, alpha: PrivateIdentity, beta: PrivateIdentity,
                        witness: PrivateIdentity) -> Iterator[Harness]:
    """``open_pair`` with both parties pinning ``witness``'s key (their checkpoints are sent
    and checked, PROTOCOL.md §13)."""
    with open_pair(root, alpha, beta) as harness:
        for party in (harness.alpha, harness.beta):
            wire.pin_witness_key(party.engine, witness.public)
        yield harness
