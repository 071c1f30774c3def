"""In-process fan-out: enough for one replica (and for several replicas
whose followers poll the store, see ``engine.background.follow``)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from responsa.fanout.base import CancelWatchers, Event, Follower


class _Subscription(Follower):
    def __init__(self, fanout: LocalFanout, response_id: str) -> None:
        super().__init__(response_id, fanout.max_pending)
        self._fanout = fanout

    async def __aenter__(self) -> _Subscription:
        self._fanout._followers.setdefault(self.response_id, set()).add(self)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        followers = self._fanout._followers.get(self.response_id, set())
        followers.discard(self)
        if not followers:
            self._fanout._followers.pop(self.response_id, None)


class LocalFanout:
    """Followers and cancel flags of this process, by response id."""

    def __init__(self, *, max_pending: int = 10_000) -> None:
        self.max_pending = max_pending
        self._followers: dict[str, set[_Subscription]] = {}
        self._cancel_watchers = CancelWatchers()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def publish(self, response_id: str, event: Event) -> None:
        for sub in self._followers.get(response_id, ()):
            sub.deliver(event)

    def subscribe(self, response_id: str) -> _Subscription:
        return _Subscription(self, response_id)

    async def cancel(self, response_id: str) -> None:
        self._cancel_watchers.fire(response_id)

    def watch_cancel(self, response_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        return self._cancel_watchers.watch(response_id)
