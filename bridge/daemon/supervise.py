"""Background tasks that never die silently: each is restarted with a backoff, and its death is
logged, counted and named in health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bridge.engine.metrics import Metrics

log = logging.getLogger("bridge.daemon")


# A restarted task that then runs this long is well again: its fault is cleared and its
# backoff starts over.
STABLE_SECONDS = 30.0


async def supervise(name: str, work: Callable[[], Awaitable[None]], metrics: Metrics, *,
                    initial: float = 0.5, cap: float = 60.0,
                    stable: float = STABLE_SECONDS) -> None:
    """Run ``work`` (meant to run until cancelled) for as long as the daemon runs. If it dies
    it is never silent: the exception is logged with its traceback, counted in /metrics
    (``task_restarts``), named in health (fault ``task_<name>``, "degraded") and the task is
    restarted after a backoff (exponential, capped). The fault clears once the restarted task
    has run for ``stable`` seconds."""
    fault = f"task_{name}"
    failures = 0
    while True:
        task = asyncio.ensure_future(work())
        try:
            done, _ = await asyncio.wait({task}, timeout=stable)
            if not done and metrics.clear_fault(fault):
                failures = 0
                log.info("background task %s is running again", name)
            await task
            detail = "returned, though it should run until stopped"
            log.error("background task %s %s; restarting it", name, detail)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            log.exception("background task %s died; restarting it", name)
        failures += 1
        metrics.inc("task_restarts", task=name)
        metrics.set_fault(fault, f"died {failures} time(s) in a row; last: {detail}")
        await asyncio.sleep(min(cap, initial * 2 ** min(failures - 1, 16)))


def report_failure(task: asyncio.Task[None], *, metrics: Metrics) -> None:
    if task.cancelled() or task.exception() is None:
        return
    metrics.inc("task_failures", task=task.get_name())
    log.error("task %s failed", task.get_name(), exc_info=task.exception())
