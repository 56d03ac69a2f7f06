"""What the store wrote since the daemon last asked, kept to be told with the change
(``Store.take_written``, ``Written``) once it is on disk: the events it added, the envelopes it
queued. A waiter told them need not read them back (one hop to the database thread and back
less on the way of each).

Only what is still to be committed is kept: a transaction rolled back takes back what it added
(``forget_since``), a group that is lost takes everything (``clear``). At most ``budget`` (in
the units of ``size``) is kept, the newest: whoever is told checks that what it is told follows
what it has, and reads the store for anything else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Told(Generic[T]):
    def __init__(self, budget: int, size: Callable[[T], int]) -> None:
        self._items: deque[T] = deque()
        self._used = 0
        self._budget = budget
        self._size = size
        self.made = 0
        """How many were ever added: a transaction's mark, for ``forget_since``."""

    def add(self, item: T) -> None:
        self._items.append(item)
        self._used += self._size(item)
        self.made += 1
        while self._used > self._budget and self._items:
            self._used -= self._size(self._items.popleft())  # the oldest go first

    def forget_since(self, made: int) -> None:
        """What was added since ``made`` was rolled back: none of it is told."""
        for _ in range(min(len(self._items), self.made - made)):
            self._used -= self._size(self._items.pop())
        self.made = made

    def clear(self) -> None:
        self._items.clear()
        self._used = 0

    def take(self) -> tuple[T, ...]:
        items = tuple(self._items)
        self.clear()
        return items


__all__ = ["Told"]
