"""The Lamport clock against a small in-memory `ClockStore` (the SQLite store has its own tests)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hivebrain.events import ClockStore, LamportClock


class MemoryClockStore:
    """The `ClockStore` contract in a few lines: one high-water mark, reservations above it."""

    def __init__(self) -> None:
        self.high = 0
        self.reservations = 0

    def reserve(self, above: int, count: int) -> int:
        first = max(self.high, above) + 1
        self.high = first + count - 1
        self.reservations += 1
        return first

    def observe(self, value: int) -> None:
        self.high = max(self.high, value)


def test_memory_store_is_a_clock_store() -> None:
    store: ClockStore = MemoryClockStore()
    assert store.reserve(0, 5) == 1
    assert store.reserve(0, 1) == 6


@pytest.mark.parametrize("block", [1, 3, 100])
def test_ticks_strictly_increase_from_one(block: int) -> None:
    clock = LamportClock(MemoryClockStore(), block=block)
    assert clock.last == 0
    ticks = [clock.tick() for _ in range(250)]
    assert ticks == list(range(1, 251))
    assert clock.last == 250


def test_block_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block must be >= 1"):
        LamportClock(MemoryClockStore(), block=0)


def test_one_store_write_per_block() -> None:
    store = MemoryClockStore()
    clock = LamportClock(store, block=100)
    for _ in range(250):
        clock.tick()
    assert store.reservations == 3
    assert store.high == 300


@pytest.mark.parametrize("block", [1, 10])
def test_observe_puts_the_next_tick_above_the_remote(block: int) -> None:
    store = MemoryClockStore()
    clock = LamportClock(store, block=block)
    clock.tick()
    clock.observe(41)
    assert clock.last == 41
    assert clock.tick() == 42
    clock.observe(500)
    assert store.high >= 500
    assert clock.tick() == 501


def test_observe_inside_the_reserved_block_stays_in_it() -> None:
    store = MemoryClockStore()
    clock = LamportClock(store, block=10)
    assert clock.tick() == 1
    clock.observe(5)
    assert clock.tick() == 6
    assert store.reservations == 1


@pytest.mark.parametrize("lower", [0, 1, 6, 7])
def test_observing_a_lower_value_changes_nothing(lower: int) -> None:
    store = MemoryClockStore()
    clock = LamportClock(store, block=4)
    for _ in range(7):
        clock.tick()
    high = store.high
    clock.observe(lower)
    assert clock.last == 7
    assert store.high == high
    assert clock.tick() == 8


@pytest.mark.parametrize("block", [1, 5, 64])
def test_a_restart_never_reuses_a_value(block: int) -> None:
    store = MemoryClockStore()
    before = LamportClock(store, block=block)
    handed_out = [before.tick() for _ in range(7)]
    after = LamportClock(store, block=block)  # the process crashed; a new one starts
    first = after.tick()
    assert first > max(handed_out)
    if block > 7:
        assert first == block + 1  # the rest of the crashed block is skipped


def test_a_restart_stays_above_what_was_observed() -> None:
    store = MemoryClockStore()
    before = LamportClock(store, block=10)
    before.tick()
    before.observe(1000)
    assert LamportClock(store, block=10).tick() == 1001


@pytest.mark.parametrize("block", [1, 2, 7])
def test_two_clocks_on_one_store_never_collide(block: int) -> None:
    store = MemoryClockStore()
    node, cli = LamportClock(store, block=block), LamportClock(store, block=block)
    pattern = itertools.cycle([node, node, cli, node, cli, cli, cli])
    ticks = [next(pattern).tick() for _ in range(300)]
    assert len(set(ticks)) == len(ticks)


def test_a_clock_observing_the_other_clock_jumps_its_block() -> None:
    store = MemoryClockStore()
    node, cli = LamportClock(store, block=10), LamportClock(store, block=10)
    assert node.tick() == 1
    assert cli.tick() == 11
    node.observe(11)
    assert node.tick() == 21  # above cli's whole reservation, not inside it


Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.just(0)),
        st.tuples(st.just("observe"), st.integers(min_value=0, max_value=300)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(block=st.integers(min_value=1, max_value=8), steps=ops)
def test_every_tick_is_above_everything_seen_before(block: int, steps: list[Op]) -> None:
    store = MemoryClockStore()
    clock = LamportClock(store, block=block)
    seen = 0  # the highest tick or observed value so far, across restarts
    for op, value in steps:
        if op == "tick":
            tick = clock.tick()
            assert tick > seen
            seen = tick
        elif op == "observe":
            clock.observe(value)
            seen = max(seen, value)
        else:
            clock = LamportClock(store, block=block)
        assert clock.last <= seen or op == "restart"


class SharedStoreMachine(RuleBasedStateMachine):
    """Several processes of one node share a store; each may crash and restart at any time.

    Every value handed out is unique, and every tick of a process (across its restarts) is above
    every tick and every observed value that process has seen.
    """

    @initialize(processes=st.integers(min_value=1, max_value=3), block=st.integers(1, 6))
    def start(self, processes: int, block: int) -> None:
        self.store = MemoryClockStore()
        self.block = block
        self.clocks = [LamportClock(self.store, block=block) for _ in range(processes)]
        self.seen = [0] * processes
        self.handed_out: set[int] = set()
        self.duplicate = False

    def _pick(self, data: st.DataObject) -> int:
        return data.draw(st.integers(min_value=0, max_value=len(self.clocks) - 1))

    @precondition(lambda self: hasattr(self, "clocks"))
    @rule(data=st.data())
    def tick(self, data: st.DataObject) -> None:
        i = self._pick(data)
        value = self.clocks[i].tick()
        assert value > self.seen[i]
        self.seen[i] = value
        self.duplicate |= value in self.handed_out
        self.handed_out.add(value)

    @precondition(lambda self: hasattr(self, "clocks"))
    @rule(data=st.data(), remote=st.integers(min_value=0, max_value=200))
    def observe(self, data: st.DataObject, remote: int) -> None:
        i = self._pick(data)
        self.clocks[i].observe(remote)
        self.seen[i] = max(self.seen[i], remote)

    @precondition(lambda self: hasattr(self, "clocks"))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        i = self._pick(data)
        self.clocks[i] = LamportClock(self.store, block=self.block)

    @precondition(lambda self: hasattr(self, "clocks"))
    @invariant()
    def no_value_handed_out_twice(self) -> None:
        assert not self.duplicate

    @precondition(lambda self: hasattr(self, "clocks"))
    @invariant()
    def store_is_above_every_value_handed_out(self) -> None:
        assert self.store.high >= max(self.handed_out, default=0)


SharedStoreMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestSharedStore = SharedStoreMachine.TestCase
