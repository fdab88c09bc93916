"""Background tasks stop even when a cancellation gets lost on the way."""

from __future__ import annotations

import asyncio

import pytest

from hivebrain.background import cancel_and_wait


async def test_a_loop_whose_wait_for_swallows_the_cancel_still_stops() -> None:
    # The loop of a request/reply watcher: on Python 3.11, a cancel that arrives in the turn
    # its reply arrives in is swallowed by wait_for, and the loop goes round again.
    loop = asyncio.get_running_loop()
    replies: list[asyncio.Future[int]] = []

    async def watcher() -> None:
        while True:
            reply: asyncio.Future[int] = loop.create_future()
            replies.append(reply)
            await asyncio.wait_for(reply, 5.0)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(watcher())
    await asyncio.sleep(0)  # waiting for its first reply
    replies[-1].set_result(1)  # the reply and the stop land in the same turn
    async with asyncio.timeout(10):
        await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_task_that_ignores_one_cancel_is_cancelled_again() -> None:
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 1:
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await cancel_and_wait(task)
    assert cancels == 2 and task.cancelled()


async def test_the_error_a_task_ended_with_is_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("broken loop")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="broken loop"):
        await cancel_and_wait(task)
    await cancel_and_wait(None)  # nothing to stop
