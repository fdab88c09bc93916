"""The node's Lamport clock.

Rules: +1 for each local event (`tick`); on applying a remote event, `max(local, remote)`
(`observe`), so the next local event is stamped above everything this node has seen.

The clock is persisted through a `ClockStore` port. To keep a high publish rate it reserves
blocks of values ahead (one write per block, not per event); after a crash the unused rest of
a block is skipped, which keeps every stamp unique and increasing. Several processes of one node
(the node and a CLI command) share the store, and each reservation starts above all earlier
ones and above everything observed.
"""

from __future__ import annotations

from typing import Protocol

#: How far above a node's clock a remote stamp may be before it is refused (dead-lettered): far
#: more events than a node writes while apart from the others, and far less than the 2**53 a
#: stamp may reach, so one bad or hostile stamp cannot push a clock to its end.
MAX_CLOCK_JUMP = 10**9


class ClockStore(Protocol):
    def reserve(self, above: int, count: int) -> int:
        """Atomically reserve `count` values above max(stored, above); return the first."""
        ...

    def observe(self, value: int) -> None:
        """Atomically raise the stored high-water mark to at least `value`."""
        ...


class LamportClock:
    def __init__(self, store: ClockStore, block: int = 1) -> None:
        if block < 1:
            raise ValueError("block must be >= 1")
        self._store = store
        self._block = block
        self._next = 1  # the next value to hand out, if within the reservation
        self._ceiling = 0  # the last value of the current reservation

    def tick(self) -> int:
        """The stamp for a new local event."""
        if self._next > self._ceiling:
            first = self._store.reserve(self._next - 1, self._block)
            self._next, self._ceiling = first, first + self._block - 1
        value = self._next
        self._next += 1
        return value

    def observe(self, remote: int) -> None:
        """Merge a remote stamp: later local events are stamped above it."""
        if remote >= self._next:
            self._next = remote + 1
            self._store.observe(remote)

    def witness(self, remote: int) -> None:
        """Like `observe`, for a stamp the store has already recorded (the projection raises
        the stored high-water mark in the transaction that applies the events): memory only."""
        if remote >= self._next:
            self._next = remote + 1

    @property
    def last(self) -> int:
        """The last stamp handed out or observed."""
        return self._next - 1
