"""Background tasks of the daemon (the delivery loops, the deadline watch) are supervised: a task
that dies is logged with its traceback, counted in /metrics, named in health and restarted
with backoff; never silent, as a delivery loop once was (it died on a peer's malformed answer
and the daemon went on saying "ok" while sending nothing)."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from bridge.daemon.supervise import report_failure, supervise
from bridge.engine.metrics import Metrics


def test_background_task_that_dies_is_logged_restarted_counted_and_shown_in_health(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    runs: list[int] = []
    seen: dict[str, dict[str, str]] = {}

    async def deliver() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise TypeError("a str where bytes belong")
        await asyncio.Event().wait()  # then it runs, as a delivery loop does

    async def main() -> None:
        task = asyncio.create_task(supervise("deliver-beta", deliver, metrics, initial=0.01,
                                             cap=0.05, stable=0.3))
        async with asyncio.timeout(60):
            while len(runs) < 3:
                await asyncio.sleep(0.01)
            seen["restarted"] = metrics.faults()
            while metrics.faults():  # cleared once the task has run for ``stable`` seconds
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="bridge.daemon"):
        asyncio.run(main())
    assert "TypeError" in seen["restarted"]["task_deliver-beta"]
    assert "2 time(s) in a row" in seen["restarted"]["task_deliver-beta"]
    died = [r for r in caplog.records if "deliver-beta died" in r.getMessage()]
    assert len(died) == 2 and all(r.exc_info for r in died)
    assert any("running again" in r.getMessage() for r in caplog.records)
    text = metrics.render({}, "alpha")
    assert 'bridge_task_restarts_total{party="alpha",task="deliver-beta"} 2.0' in text
    assert 'bridge_faults{party="alpha"} 0.0' in text


def test_background_task_that_returns_is_restarted_too() -> None:
    metrics = Metrics()
    runs: list[int] = []

    async def returns() -> None:
        runs.append(1)

    async def main() -> None:
        task = asyncio.create_task(supervise("deadlines", returns, metrics, initial=0.01,
                                             cap=0.02))
        async with asyncio.timeout(60):
            while len(runs) < 3:
                await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert "returned" in metrics.faults()["task_deadlines"]


def test_one_shot_task_that_fails_is_logged_and_counted_when_it_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    async def reload() -> None:
        raise RuntimeError("the store is locked")

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(reload(), name="reload-peers")
        task.add_done_callback(functools.partial(report_failure, metrics=metrics))
        await asyncio.wait({task})
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop

    with caplog.at_level(logging.ERROR, logger="bridge.daemon"):
        asyncio.run(main())
    assert any("reload-peers failed" in r.getMessage() and r.exc_info for r in caplog.records)
    text = metrics.render({}, "alpha")
    assert 'bridge_task_failures_total{party="alpha",task="reload-peers"} 1.0' in text
