"""Cross-replica fan-out against the real Redis: each ``RedisFanout`` below
is what one replica would own; they share only the Redis server."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from responsa.fanout import Fanout, Lagged
from responsa.fanout.redis import RedisFanout, Subscription
from tests.helpers import async_holds_for


def events(n: int, terminal: str = "response.completed") -> list[dict[str, Any]]:
    deltas = [{"type": "response.output_text.delta", "sequence_number": i, "delta": f"w{i} ☃"} for i in range(n)]
    return [*deltas, {"type": terminal, "sequence_number": n, "response": {"id": "resp_x", "status": "completed"}}]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[RedisFanout]]:
    """Three replicas on a key prefix of their own, so parallel runs on one Redis never cross."""
    prefix = f"responsa-test-{uuid.uuid4().hex[:8]}"
    fanouts = [RedisFanout(redis_url, prefix=prefix, max_pending=50) for _ in range(3)]
    for f in fanouts:
        await f.open()
    try:
        yield fanouts
    finally:
        for f in fanouts:
            await f.close()


async def collect(sub: Subscription) -> list[dict[str, Any]]:
    return [ev async for ev in sub]


async def test_events_cross_replicas_in_order(replicas: list[RedisFanout]) -> None:
    a, b, c = replicas
    sent = events(40)
    async with b.subscribe("resp_1") as on_b, c.subscribe("resp_1") as on_c, a.subscribe("resp_1") as on_a, \
            b.subscribe("resp_other") as unrelated:
        readers = [asyncio.create_task(collect(s)) for s in (on_a, on_b, on_c)]
        for ev in sent:
            a.publish("resp_1", ev)
        a.publish("resp_2", events(1)[0])
        got = await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert got == [sent, sent, sent]  # every follower, every event, in order, ending at the terminal one
        assert unrelated.queue.empty()


async def test_two_followers_on_one_replica_share_one_subscription(replicas: list[RedisFanout]) -> None:
    a, b, _ = replicas
    delta0, delta1, done = events(2)
    async with b.subscribe("resp_1") as first:
        async with b.subscribe("resp_1") as second:
            a.publish("resp_1", delta0)
            assert await asyncio.wait_for(anext(second), 5) == delta0
            assert await asyncio.wait_for(anext(first), 5) == delta0
        # The second follower leaving does not unsubscribe the first.
        a.publish("resp_1", delta1)
        a.publish("resp_1", done)
        assert await asyncio.wait_for(collect(first), 5) == [delta1, done]
    # Everyone left (nothing in flight): a new follower subscribes afresh and receives.
    async with b.subscribe("resp_1") as again:
        a.publish("resp_1", done)
        assert await asyncio.wait_for(collect(again), 5) == [done]


async def test_cancel_signal_crosses_replicas(replicas: list[RedisFanout]) -> None:
    a, b, c = replicas
    async with a.watch_cancel("resp_job") as cancelled, c.watch_cancel("resp_other") as other:
        assert not cancelled.is_set()
        await b.cancel("resp_job")
        await asyncio.wait_for(cancelled.wait(), 5)  # (no wall-clock bound: it flaked on a loaded 2-core box)
        await async_holds_for(lambda: not other.is_set(), 0.05, what="the other response is not cancelled")
    await b.cancel("resp_job")  # nobody watching any more: harmless


async def test_slow_follower_is_cut_off_not_blocking(replicas: list[RedisFanout]) -> None:
    """A follower that stops reading costs at most ``max_pending`` events of
    memory and never slows the publisher; it learns it lagged."""
    a, b, _ = replicas
    async with b.subscribe("resp_1") as slow, b.subscribe("resp_1") as fast:
        reader = asyncio.create_task(collect(fast))
        started = time.monotonic()
        for ev in events(500):
            a.publish("resp_1", ev)
        assert time.monotonic() - started < 0.5  # publishing is a local enqueue
        assert len(await asyncio.wait_for(reader, 10)) == 501
        received = []
        with pytest.raises(Lagged):
            async for ev in slow:
                received.append(ev)
        assert [e["sequence_number"] for e in received] == list(range(50))


async def test_close_flushes_published_events(redis_url: str, replicas: list[RedisFanout]) -> None:
    _, b, _ = replicas
    leaving = RedisFanout(redis_url, prefix=b.prefix)
    await leaving.open()
    async with b.subscribe("resp_1") as sub:
        reader = asyncio.create_task(collect(sub))
        for ev in events(100):
            leaving.publish("resp_1", ev)
        await leaving.close()  # a replica shutting down mid-burst
        assert len(await asyncio.wait_for(reader, 5)) == 101


def test_has_the_fanout_shape() -> None:
    """Drop-in for ``LocalFanout`` wherever the engine takes a ``Fanout``."""
    wanted = {n for n, _ in inspect.getmembers(Fanout, inspect.isfunction) if not n.startswith("_")}
    for name in wanted:
        mine, proto = getattr(RedisFanout, name, None), getattr(Fanout, name)
        assert mine is not None, f"RedisFanout lacks {name}"
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(proto).parameters), name
        assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(proto), name
