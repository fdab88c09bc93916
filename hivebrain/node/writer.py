"""Where a projector's writes run: a thread of the node's process, or a process of their own.

A projector hands every write (`apply_batch`, `advance`, ...) to one writer, one call at a time,
in order. A running node uses `ThreadWriter`: its store is the one the node answers queries
from. A replay (`projections rebuild`) uses `ProcessWriter`: decoding events and building rows
is Python work that needs the interpreter lock, and so is reading messages from NATS; in one
process the two take turns, in two processes they run side by side on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import multiprocessing
import signal
import sqlite3
import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from hivebrain.errors import ProjectionError, WriterGone
from hivebrain.projections.memory_queries import Strategy
from hivebrain.projections.sqlite import connect, sqlite_errors
from hivebrain.projections.store import BatchResult, Delivery, ProjectionStore

P = ParamSpec("P")
R = TypeVar("R")


class StoreWriter(ABC):
    """What a projector asks of its writer: the store's writes, run one call at a time, in
    order, wherever the writer runs them."""

    async def apply_batch(
        self,
        deliveries: Sequence[Delivery],
        *,
        finish: bool = True,
        expect: Mapping[str, int] | None = None,
    ) -> BatchResult:
        return await self._call(
            ProjectionStore.apply_batch, deliveries, finish=finish, expect=expect
        )

    async def advance(self, stream: str, seq: int) -> None:
        await self._call(ProjectionStore.advance, stream, seq)

    async def position(self, stream: str) -> int:
        return await self._call(ProjectionStore.position, stream)

    async def finish_pending(self) -> None:
        await self._call(ProjectionStore.finish_pending)

    async def begin_replay(self) -> None:
        await self._call(ProjectionStore.begin_replay)

    async def end_replay(self) -> None:
        await self._call(ProjectionStore.end_replay)

    async def scrub_erased(self, event_ids: Sequence[str]) -> None:
        await self._call(ProjectionStore.scrub_erased, event_ids)

    @abstractmethod
    async def _call(
        self, fn: Callable[Concatenate[ProjectionStore, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """`fn(store, *args, **kwargs)` on the writer's store."""

    @abstractmethod
    def copy_wal(self) -> None: ...

    @abstractmethod
    async def settle(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class ThreadWriter(StoreWriter):
    """Calls the store's methods on one dedicated thread."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store
        self._executor: Executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="projection-writer"
        )

    async def _call(
        self, fn: Callable[Concatenate[ProjectionStore, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        call = functools.partial(fn, self._store, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def copy_wal(self) -> None:
        """Nothing: the thread shares this process's connection (see ProcessWriter)."""

    async def settle(self) -> None:
        """Nothing to wait for (see ProcessWriter)."""

    async def close(self) -> None:
        """Wait for the call in progress, then end the thread (the store stays open)."""
        await asyncio.to_thread(self._executor.shutdown, True)


# -- the writer process -------------------------------------------------------------------------

_STORE: ProjectionStore | None = None


def _open(path: str, strategy: Strategy, max_clock_jump: int) -> None:
    global _STORE
    # Ctrl-C reaches the whole process group: the parent stops the replay and closes this
    # process, which must not die half-way through a batch with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _STORE = ProjectionStore(path, strategy=strategy, max_clock_jump=max_clock_jump)
    # A batch makes ~100,000 short-lived objects (events, rows) that reference counting frees;
    # the cyclic collector would walk them dozens of times per batch (a fifth of the process's
    # time). It runs once after each call instead; what exists now (modules, the store) is
    # frozen, so those collections only walk what the calls left.
    gc.freeze()
    gc.disable()


def _started() -> None:
    """The first task: submitting it is what starts the process."""


@contextlib.contextmanager
def _main_left_out() -> Iterator[None]:
    """Hide the parent's main module while a process is started.

    `spawn` makes the child import the parent's main module first, so that functions defined
    there can be unpickled: for the `hivebrain` command that is the whole CLI (~0.5 s), for
    `python -m bench.run` every benchmark (~1 s), all before the child can take its first
    batch. The writer's child runs only functions of this module and needs none of it. Start
    the process inside this block (the preparation data is taken in `Process.start`)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _in_child(
    fn: Callable[Concatenate[ProjectionStore, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    if _STORE is None:
        raise ProjectionError("the projection writer process has no store open")
    try:
        return fn(_STORE, *args, **kwargs)
    finally:
        gc.collect()


class ProcessWriter(StoreWriter):
    """Calls the methods of a store opened on the same file in a child process (started with
    `spawn`: forking a process that runs an event loop and threads is unsafe). Arguments and
    results travel pickled, exceptions too; a child that dies makes every later call raise
    WriterGone."""

    #: How long `close` waits for the child to close its store before ending it.
    CLOSE_TIMEOUT_S = 30.0

    def __init__(self, path: Path, strategy: Strategy, max_clock_jump: int) -> None:
        if str(path) == ":memory:":
            raise ValueError("a writer process cannot share an in-memory database")
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open,
            initargs=(str(path), strategy, max_clock_jump),
        )
        # Start the process now, while the main module is hidden. It is the pool's only one:
        # with one worker and no `max_tasks_per_child`, the pool never starts another.
        with _main_left_out():
            self._executor.submit(_started)
        self._closed = False
        self._path = path
        self._checkpointer: sqlite3.Connection | None = None
        self._copying: asyncio.Future[None] | None = None

    async def _call(
        self, fn: Callable[Concatenate[ProjectionStore, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        loop = asyncio.get_running_loop()
        call = functools.partial(_in_child, fn, *args, **kwargs)  # fn travels by its name
        try:
            return await loop.run_in_executor(self._executor, call)
        except BrokenProcessPool as exc:
            raise WriterGone(f"the projection writer process died: {exc}") from exc

    def copy_wal(self) -> None:
        """Start copying what the child has committed from the WAL into the database file (a
        PASSIVE checkpoint, on a connection of this process, in a thread), unless a copy is
        still running. A replay turns automatic checkpoints off and checkpoints once at its
        end; copying along the way, while the child writes, leaves that one little to do."""
        if self._copying is None or self._copying.done():
            self._copying = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))

    def _checkpoint(self) -> None:
        # A failed copy changes nothing: the final checkpoint copies whatever is left.
        with contextlib.suppress(ProjectionError, *sqlite_errors()):
            if self._checkpointer is None:
                self._checkpointer = connect(self._path)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def settle(self) -> None:
        """Wait for a copy in progress (a TRUNCATE checkpoint cannot run beside it)."""
        if self._copying is not None:
            with contextlib.suppress(Exception):
                await self._copying
            self._copying = None

    async def close(self) -> None:
        """Close the child's store and end the child (it is killed if it does not finish
        closing within CLOSE_TIMEOUT_S). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.settle()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        loop = asyncio.get_running_loop()
        try:
            done = loop.run_in_executor(
                self._executor, functools.partial(_in_child, ProjectionStore.close)
            )
            await asyncio.wait_for(done, self.CLOSE_TIMEOUT_S)
        except (BrokenProcessPool, TimeoutError):
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.kill()
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
