"""Redis down degrades the fan-out, never fails it: against a Redis of our
own on a private port, stopped and started by the test (never the shared one)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from responsa.fanout.redis import RECONNECT_S, RedisFanout
from tests.helpers import OwnRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    try:
        subprocess.run(["redis-server", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"redis-server not available: {exc!r}")
    redis = OwnRedis(tmp_path)
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
async def pair(own_redis: OwnRedis) -> AsyncIterator[tuple[OwnRedis, RedisFanout, RedisFanout]]:
    """Two replicas' fan-outs, opened while their Redis is DOWN."""
    prefix = f"responsa-test-{uuid.uuid4().hex[:8]}"
    a, b = RedisFanout(own_redis.url, prefix=prefix), RedisFanout(own_redis.url, prefix=prefix)
    started = time.monotonic()
    await a.open()
    await b.open()
    assert time.monotonic() - started < 5, "open waits for one attempt, not for Redis"
    try:
        yield own_redis, a, b
    finally:
        await a.close()
        await b.close()


async def _until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def ev(seq: int, kind: str = "response.output_text.delta") -> dict[str, Any]:
    return {"type": kind, "sequence_number": seq}


async def test_starts_and_serves_without_redis_then_resumes_live(
        pair: tuple[OwnRedis, RedisFanout, RedisFanout]) -> None:
    redis, a, b = pair
    assert a.state == "unavailable" and b.state == "unavailable"  # said, for /health and the logs
    async with b.subscribe("resp_1") as follower:
        a.publish("resp_1", ev(0))  # dropped (the store has it), never raised
        await b.cancel("resp_other")  # answered, not raised: the stored cancel stops the runner
        assert follower.queue.empty()

        redis.start()
        await _until(lambda: a.state == "ok" and b.state == "ok")
        # The follower that subscribed while Redis was down now gets the live tail.
        async def receive() -> dict[str, Any]:
            return await anext(follower)

        got = asyncio.create_task(receive())
        deadline = time.monotonic() + 10
        while not got.done():
            a.publish("resp_1", ev(1))
            await asyncio.wait({got}, timeout=0.2)
            assert time.monotonic() < deadline, "live tail did not resume"
        assert got.result() == ev(1)


async def test_redis_dying_under_a_follower(pair: tuple[OwnRedis, RedisFanout, RedisFanout]) -> None:
    redis, a, b = pair
    redis.start()
    await _until(lambda: a.state == "ok" and b.state == "ok")
    async with b.subscribe("resp_2") as follower:
        a.publish("resp_2", ev(0))
        assert await asyncio.wait_for(anext(follower), 5) == ev(0)
        redis.stop()
        await _until(lambda: b.state == "unavailable")
        a.publish("resp_2", ev(1))  # dropped, logged once
        await b.cancel("resp_x")
        async with b.subscribe("resp_3") as another:  # a new follower while down: no error
            assert another.queue.empty()
        redis.start()
        await _until(lambda: a.state == "ok" and b.state == "ok", timeout=10 + 2 * RECONNECT_S)
        deadline = time.monotonic() + 10
        while follower.queue.empty():
            a.publish("resp_2", ev(2, "response.completed"))
            await asyncio.sleep(0.2)
            assert time.monotonic() < deadline, "resubscribed after Redis came back"
        assert (await anext(follower))["sequence_number"] == 2
