"""Long-lived background tasks that cannot die silently.

A task created with ``asyncio.create_task`` that raises is simply done: its
exception surfaces only when someone awaits it, typically at shutdown. That
is how running out of file descriptors killed the SQLite checkpointer for
good (issue 15, fault 7): the WAL then grew without bound and nobody could
tell. Every periodic loop of the server (checkpoints, lease renewal, the
job sweeper, the fan-out listener, ...) runs under ``Supervisor`` instead:

- a loop that raises is logged and restarted, after a backoff that doubles
  from ``MIN_BACKOFF_S`` up to ``MAX_BACKOFF_S`` (resetting once it has run
  for a while), so a persistent fault neither spins nor stays dead;
- each task's state (running, restarts, last error and when) is in
  ``Supervisor.status()``, which ``/health`` reports: a task that failed
  within the last ``DEGRADED_FOR_S`` makes the server ``degraded``, visibly.

Each component that runs loops owns a ``Supervisor`` (attribute
``supervisor``); the app collects them for ``/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("responsa.supervise")

MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 10.0
HEALTHY_AFTER_S = 30.0
"""A task that ran this long before failing restarts with the shortest backoff again."""
DEGRADED_FOR_S = 60.0
"""How long a failure keeps the server reported ``degraded``."""


@dataclass(slots=True)
class TaskState:
    name: str
    factory: Callable[[], Awaitable[None]]
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    waiting: bool = False
    """Between a failure and its restart."""

    def report(self) -> dict[str, Any]:
        return {"running": not self.waiting, "restarts": self.restarts, "last_error": self.last_error,
                "last_error_at": self.last_error_at}

    @property
    def failing(self) -> bool:
        return self.waiting or (self.last_error_at is not None and time.time() - self.last_error_at < DEGRADED_FOR_S)


class Supervisor:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskState] = {}
        self._closing = False

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` as ``name``, forever: restarted whenever it
        raises or returns (a loop that ends on its own is a bug too)."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already supervised")
        state = TaskState(name, factory)
        self._tasks[name] = state
        state.task = asyncio.create_task(self._keep(state), name=f"supervised:{name}")

    async def _keep(self, state: TaskState) -> None:
        backoff = MIN_BACKOFF_S
        while not self._closing:
            began = time.monotonic()
            try:
                await state.factory()
                raise RuntimeError("the task returned")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:500]
                state.last_error_at = time.time()
                state.waiting = True
                if time.monotonic() - began > HEALTHY_AFTER_S:
                    backoff = MIN_BACKOFF_S
                log.error("background task %s failed (restart %d in %.1f s)", state.name, state.restarts,
                          backoff, exc_info=True)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            state.waiting = False

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: state.report() for name, state in self._tasks.items()}

    @property
    def healthy(self) -> bool:
        return not any(state.failing for state in self._tasks.values())

    async def stop(self, name: str | None = None) -> None:
        """Cancel one task (``name``) or all of them, and wait for them to end."""
        if name is None:
            self._closing = True
        states = [self._tasks.pop(name)] if name is not None else list(self._tasks.values())
        if name is None:
            self._tasks.clear()
        for state in states:
            if state.task is not None:
                state.task.cancel()
        for state in states:
            if state.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await state.task
