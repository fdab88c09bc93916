"""Where a projector's writes run: a thread of the node's process, or a process of their own.

A projector hands every write (`apply_batch`, `advance`, ...) to one writer, one call at a time,
in order. A running node uses `ThreadWriter`: its store is the one the node answers queries
from. A replay (`projections rebuild`) uses `ProcessWriter`: decoding events and building rows
is Python work that needs the interpreter lock, and so is reading messages from NATS; in one
process the two take turns, in two processes they run side by side on two cores.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from hivebrain.projections.memory_queries import Strategy
from hivebrain.projections.store import ProjectionStore

from .errors import ProjectionError, WriterGone


class ThreadWriter:
    """Calls the store's methods on one dedicated thread."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store
        self._executor: Executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="projection-writer"
        )

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = functools.partial(getattr(self._store, method), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


# -- the writer process -------------------------------------------------------------------------

_STORE: ProjectionStore | None = None


def _open(path: str, strategy: Strategy) -> None:
    global _STORE
    _STORE = ProjectionStore(path, strategy=strategy)
    # A batch makes ~100,000 short-lived objects (events, rows) that reference counting frees;
    # the cyclic collector would walk them dozens of times per batch (a fifth of the process's
    # time). It runs once after each call instead, over what is not frozen (modules, store).
    gc.freeze()
    gc.disable()


def _call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _STORE is None:
        raise ProjectionError("the projection writer process has no store open")
    try:
        return getattr(_STORE, method)(*args, **kwargs)
    finally:
        gc.collect()


class ProcessWriter:
    """Calls the methods of a store opened on the same file in a child process (started with
    `spawn`: forking a process that runs an event loop and threads is unsafe). Arguments and
    results travel pickled; a child that dies makes every later call raise WriterGone."""

    def __init__(self, path: Path, strategy: Strategy) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open,
            initargs=(str(path), strategy),
        )

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, _call, method, args, kwargs)
        except BrokenProcessPool:
            raise WriterGone("the projection writer process died") from None

    def close(self) -> None:
        try:
            self._executor.submit(_call, "close", (), {}).result()
        except BrokenProcessPool:
            pass
        finally:
            self._executor.shutdown(wait=True)
