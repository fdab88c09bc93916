"""Stopping background tasks.

Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives in the same loop turn as
the result it waits for: it returns the result instead of raising CancelledError (fixed in
3.12). nats-py waits for every request reply and every ack with `wait_for`, so a loop that
talks to NATS can outlive a single `cancel()` and run on, and `await task` then never returns.
`cancel_and_wait` cancels again until the task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

RECANCEL_S = 1.0  # long enough for a task's own clean-up on cancel; short for a stop


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait until it has ended. An exception the task ended with other than
    its cancellation is raised here, as `await task` would."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task
