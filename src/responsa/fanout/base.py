"""The fan-out contract, and the pieces every implementation shares (a
follower's bounded queue, the registry of cancel flags).

A fan-out carries the live events of a background response, from the task
that produces them to every client following its stream, and cancel signals
to that task. This is the live tail only: the store's ``response_events`` are
the record. A follower subscribes first, then reads the stored backlog, then
takes live events, skipping sequence numbers it already has, so nothing falls
in the gap between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from responsa.protocol.events import TERMINAL
from responsa.protocol.types import Event as Event  # re-exported


class Fanout(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def publish(self, response_id: str, event: Event) -> None:
        """Hand ``event`` to every follower of ``response_id``; never blocks."""
        ...

    def subscribe(self, response_id: str) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Live events published after entering; iteration ends after the
        terminal event, or raises if the follower fell too far behind (it
        then catches up from the store)."""
        ...

    async def cancel(self, response_id: str) -> None:
        """Tell whoever runs ``response_id`` to stop it."""
        ...

    def watch_cancel(self, response_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """A flag set when ``cancel(response_id)`` is called while inside."""
        ...


class Lagged(Exception):
    """The follower fell ``max_pending`` events behind and was cut off."""


_LAGGED = object()


class Follower:
    """One follower's queue of live events, whichever fan-out feeds it."""

    def __init__(self, response_id: str, max_pending: int) -> None:
        self.response_id = response_id
        self.max_pending = max_pending
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False

    def __aiter__(self) -> Follower:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        item = await self.queue.get()
        if item is _LAGGED:
            self._done = True
            raise Lagged(self.response_id)
        event: Event = item
        if event.get("type") in TERMINAL:
            self._done = True
        return event

    def deliver(self, event: Event) -> None:
        """A slow reader costs at most ``max_pending`` events, never the producer's time."""
        pending = self.queue.qsize()
        if pending > self.max_pending:
            return
        self.queue.put_nowait(_LAGGED if pending == self.max_pending else event)


class CancelWatchers:
    """Flags that a ``cancel`` signal sets, by key; one registry serves the
    in-process and the Redis fan-out alike."""

    def __init__(self) -> None:
        self._flags: dict[str, set[asyncio.Event]] = {}

    def fire(self, key: str) -> None:
        for flag in self._flags.get(key, ()):
            flag.set()

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[asyncio.Event]:
        flag = asyncio.Event()
        self._flags.setdefault(key, set()).add(flag)
        try:
            yield flag
        finally:
            flags = self._flags.get(key, set())
            flags.discard(flag)
            if not flags:
                self._flags.pop(key, None)
