"""Work whose result is joined later: the slow half of a hybrid signature (ML-DSA-65), started
where the signed bytes are known and made beside the step that needs it.

Pure: no thread is named here. Whoever calls hands over a ``Beside`` that decides where the
work runs; ``inline`` runs it at once, which is what every caller gets unless told (the CLI,
the tests, a verifier). The daemon's runs it on a small pool (``bridge.daemon.dbthread``):
the library releases the GIL while it signs, so the signature takes the second core while
the database thread goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
S = TypeVar("S")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    """A computation under way: ``result`` waits for it (and raises what it raised)."""

    def result(self) -> T_co: ...


class Beside(Protocol):
    """Starts ``fn`` beside the caller and hands back its ``Pending`` result. ``fn`` must
    touch nothing the caller may change meanwhile (no store, no shared mutable state)."""

    def __call__(self, fn: Callable[[], T]) -> Pending[T]: ...


@dataclass(frozen=True)
class Done(Generic[T]):
    """A result computed already."""

    value: T

    def result(self) -> T:
        return self.value


@dataclass(frozen=True)
class Then(Generic[S, T]):
    """``then`` applied to ``pending``'s result, when it is asked for (on the asking thread)."""

    pending: Pending[S]
    then: Callable[[S], T]

    def result(self) -> T:
        return self.then(self.pending.result())


def inline(fn: Callable[[], T]) -> Pending[T]:
    """``Beside`` without a thread: ``fn`` runs now, and raises now."""
    return Done(fn())


__all__ = ["Beside", "Done", "Pending", "Then", "inline"]
