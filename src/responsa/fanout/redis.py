"""Cross-replica live events and cancel signals over Redis pub/sub.

The replica running a response publishes its events; a client that resumes
the stream on any other replica subscribes to them. Pub/sub is the live tail
only: the store's ``response_events`` are the durable record, so a consumer
subscribes first, then reads the stored backlog, then follows the live
events, skipping sequence numbers it has already sent.

Per replica there is one subscriber connection, whatever the number of
followers: a reader task routes each message to the local followers of that
response. Publishing never waits on Redis or on a reader: events go to an
outbox that one writer task flushes in pipelined batches (one round trip for
a burst of deltas, order preserved), and a follower that falls too far
behind is cut off with ``fanout.Lagged`` to catch up from the store
instead of growing memory or stalling the turn.

Redis is an accelerator, never a dependency (issue 15, fault 9). Without it
a replica starts anyway (``state`` is ``unavailable``, logged and shown in
``/health``); a follower gets no live events and so re-reads the store every
``POLL_S`` (``engine.background.follow``), which has every event; a cancel
is stored first, and the replica running the job stops at its next write,
which is conditional on the job still being active. The reader keeps
trying to reconnect; once Redis answers, the cancel pattern and every
follower's channel are subscribed again and ``state`` is ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from responsa.fanout.base import CancelWatchers, Event, Follower
from responsa.supervise import Supervisor

CONFIRM_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
PUBLISH_TIMEOUT_S = 5.0
RECONNECT_S = 0.5
MAX_OUTBOX = 100_000
log = logging.getLogger(__name__)


class Subscription(Follower):
    """Live events of one response. ``async with`` returns once Redis has
    confirmed the subscription, so nothing published afterwards is missed;
    iteration ends after the terminal event."""

    def __init__(self, fanout: RedisFanout, response_id: str) -> None:
        super().__init__(response_id, fanout.max_pending)
        self._fanout = fanout
        self.channel = fanout.events_channel(response_id)

    async def __aenter__(self) -> Subscription:
        await self._fanout._follow(self)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._fanout._unfollow(self)


class RedisFanout:
    def __init__(self, url: str, *, prefix: str = "responsa", max_pending: int = 10_000) -> None:
        self.url = url
        self.prefix = prefix
        self.max_pending = max_pending
        self._redis: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._followers: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._cancel_watchers = CancelWatchers()
        self._commands = asyncio.Lock()
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.supervisor = Supervisor()
        self.state = "connecting"
        """``ok`` while Redis answers, ``unavailable`` while it does not (reported by ``/health``)."""

    def events_channel(self, response_id: str) -> str:
        return f"{self.prefix}:events:{response_id}"

    def cancel_channel(self, response_id: str) -> str:
        return f"{self.prefix}:cancel:{response_id}"

    async def open(self) -> None:
        self._redis = aioredis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        self._pubsub = self._redis.pubsub()
        # Every replica hears every cancel (they are rare), so a replica can
        # be told to stop a response without a subscribe round trip per job.
        confirmed = self._expect(self.cancel_channel("*"))
        try:
            await asyncio.wait_for(self._pubsub.psubscribe(self.cancel_channel("*")), CONFIRM_TIMEOUT_S)
        except (OSError, RedisError, TimeoutError) as exc:
            self._down(exc)
            log.warning("Redis at %s is unreachable (%s): starting anyway; live events and cancel signals "
                        "fall back to polling the store until it answers", self.url, exc)
        self.supervisor.spawn("redis-fanout-reader", self._read)
        self.supervisor.spawn("redis-fanout-writer", self._write)
        if self.state == "connecting":
            try:
                await asyncio.wait_for(confirmed, CONFIRM_TIMEOUT_S)
                self.state = "ok"
            except TimeoutError as exc:
                self._down(exc)

    def _down(self, exc: BaseException) -> None:
        if self.state != "unavailable":
            log.warning("redis fan-out unavailable (%s): followers poll the store meanwhile", exc)
        self.state = "unavailable"

    async def _reconnect(self) -> None:
        """Until Redis answers: then subscribe the cancel pattern and every followed channel again."""
        assert self._redis is not None and self._pubsub is not None
        while True:
            await asyncio.sleep(RECONNECT_S)
            try:
                await asyncio.wait_for(self._redis.ping(), CONFIRM_TIMEOUT_S)
                async with self._commands:
                    await self._pubsub.psubscribe(self.cancel_channel("*"))
                    if self._followers:
                        await self._pubsub.subscribe(*self._followers)
            except (OSError, RedisError, TimeoutError):
                continue
            log.warning("redis fan-out: Redis at %s answers again", self.url)
            self.state = "ok"
            return

    async def close(self) -> None:
        """Flush what was published, then stop."""
        if self._redis is None:
            return
        if self.state == "ok":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._outbox.join(), 5)
        await self.supervisor.stop()
        with contextlib.suppress(OSError, RedisError):
            if self._pubsub is not None:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await self._redis.aclose()
        self._redis = None
        self._pubsub = None

    def publish(self, response_id: str, event: Event) -> None:
        """Queue ``event`` for every replica following ``response_id``; never
        blocks, never grows without bound (followers resync from the store)."""
        if self._outbox.qsize() >= MAX_OUTBOX:
            return
        self._outbox.put_nowait((self.events_channel(response_id), orjson.dumps(event)))

    def subscribe(self, response_id: str) -> Subscription:
        return Subscription(self, response_id)

    async def cancel(self, response_id: str) -> None:
        """Tell whichever replica runs ``response_id`` to stop it."""
        if self._redis is None:
            raise RuntimeError("fan-out is not open")
        try:
            await asyncio.wait_for(self._redis.publish(self.cancel_channel(response_id), b"cancel"),
                                   PUBLISH_TIMEOUT_S)
        except (OSError, RedisError, TimeoutError) as exc:
            # The cancel is already stored: the runner stops at its next
            # (conditional) write. The signal only makes that sooner.
            self._down(exc)

    def watch_cancel(self, response_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """An event set when any replica calls ``cancel(response_id)`` while inside."""
        return self._cancel_watchers.watch(self.cancel_channel(response_id))

    def _expect(self, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(future)
        return future

    async def _follow(self, sub: Subscription) -> None:
        if self._pubsub is None:
            raise RuntimeError("fan-out is not open")
        async with self._commands:
            followers = self._followers.setdefault(sub.channel, set())
            followers.add(sub)
            if len(followers) > 1 or self.state == "unavailable":
                # Already subscribed (and confirmed: see below), or Redis is
                # down: no live tail, the follower polls the store, and the
                # reconnect subscribes its channel when Redis is back.
                return
            confirmed = self._expect(sub.channel)
            try:
                await self._pubsub.subscribe(sub.channel)
                # Awaited under the lock so a second follower never returns
                # before the first's SUBSCRIBE is confirmed.
                await asyncio.wait_for(confirmed, CONFIRM_TIMEOUT_S)
            except (OSError, RedisError, TimeoutError) as exc:
                self._down(exc)  # kept as a follower: it polls meanwhile
            except BaseException:
                followers.discard(sub)
                if not followers:
                    del self._followers[sub.channel]
                raise

    async def _unfollow(self, sub: Subscription) -> None:
        async with self._commands:
            followers = self._followers.get(sub.channel)
            if followers is None:
                return
            followers.discard(sub)
            if not followers:
                del self._followers[sub.channel]
                if self._pubsub is not None and self.state != "unavailable":
                    with contextlib.suppress(OSError, RedisError):
                        await self._pubsub.unsubscribe(sub.channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            if self.state == "unavailable":
                await self._reconnect()
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: reconnect, resubscribe
                self._down(exc)
                continue
            if message is not None:
                self._route(message)
                # A burst already buffered would otherwise be routed without
                # ever suspending, starving followers into looking lagged.
                await asyncio.sleep(0)

    def _route(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"].decode()
        if kind in ("subscribe", "psubscribe"):
            waiting = self._confirmations.get(channel)
            if waiting:
                future = waiting.pop(0)
                if not waiting:
                    del self._confirmations[channel]
                if not future.done():
                    future.set_result(None)
        elif kind == "message":
            followers = self._followers.get(channel)
            if followers:
                event = orjson.loads(message["data"])
                for sub in followers:
                    sub.deliver(event)
        elif kind == "pmessage":
            self._cancel_watchers.fire(channel)

    async def _write(self) -> None:
        assert self._redis is not None
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                if self.state == "unavailable":
                    continue  # live tail only: followers poll the store meanwhile
                pipe = self._redis.pipeline(transaction=False)
                for channel, payload in batch:
                    pipe.publish(channel, payload)
                await asyncio.wait_for(pipe.execute(), PUBLISH_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # live tail only: followers resync from the store
                self._down(exc)
            finally:
                for _ in batch:
                    self._outbox.task_done()
