"""Fault 9: Redis down. Two real replicas share one SQLite file and a Redis
of our own on a private port, which the test stops and starts (never the
machine's shared Redis). With Redis gone, following a job from the other
replica still delivers every event (polling the store), cancel through the
other replica answers 200 and takes effect, and a new replica starts,
saying it is degraded; when Redis returns, the replicas use it again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harden.support import start, stop, wait_healthy
from tests.helpers import OwnRedis

HEADERS = {"authorization": "Bearer redis-down"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[OwnRedis, str, str, Path]]:
    redis = OwnRedis(tmp_path)
    redis.start()
    db = tmp_path / "shared.db"
    env = {"RESPONSA_REDIS_URL": redis.url, "RESPONSA_BACKGROUND_LEASE_S": "3"}
    procs = []
    try:
        a, url_a = start(tmp_path / "a.log", "--database-url", f"sqlite:///{db}", env=env)
        procs.append(a)
        wait_healthy(a, url_a, tmp_path / "a.log")
        b, url_b = start(tmp_path / "b.log", "--database-url", f"sqlite:///{db}", env=env)
        procs.append(b)
        wait_healthy(b, url_b, tmp_path / "b.log")
        yield redis, url_a, url_b, db
    finally:
        for p in procs:
            stop(p)
        redis.stop()


def _follow(url: str, rid: str) -> list[dict[str, Any]]:
    events = []
    with httpx.stream("GET", f"{url}/v1/responses/{rid}", params={"stream": "true"}, headers=HEADERS,
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line[6:]))
    return events


def _wait_status(url: str, rid: str, statuses: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(f"{url}/v1/responses/{rid}", headers=HEADERS, timeout=10).json()
        if body["status"] in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_redis_down_degrades_to_polling(cluster: tuple[OwnRedis, str, str, Path], tmp_path: Path) -> None:
    redis, url_a, url_b, db = cluster
    job = httpx.post(f"{url_a}/v1/responses", headers=HEADERS, timeout=10, json={
        "model": "test/echo", "input": "[[long:40]] [[delay:50]]", "background": True}).json()
    victim = httpx.post(f"{url_a}/v1/responses", headers=HEADERS, timeout=10, json={
        "model": "test/echo", "input": "[[long:2000]] [[delay:50]]", "background": True}).json()
    assert _wait_status(url_a, victim["id"], ("in_progress",))["status"] == "in_progress"
    redis.stop()

    # Following from the other replica: every event, in order, through the terminal one.
    events = _follow(url_b, job["id"])
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed", events[-1]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert len(text.split()) == 40

    # Cancel through the other replica: 200, and it takes effect on the replica running it.
    r = httpx.post(f"{url_b}/v1/responses/{victim['id']}/cancel", headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    final = _wait_status(url_a, victim["id"], ("cancelled", "failed", "completed"))
    assert final["status"] == "cancelled"
    seen = len(_follow(url_a, victim["id"]))
    time.sleep(1)
    assert len(_follow(url_a, victim["id"])) == seen  # the runner on A stopped writing

    # A new replica starts anyway, and says it is degraded.
    c, url_c = start(tmp_path / "c.log", "--database-url", f"sqlite:///{db}",
                     env={"RESPONSA_REDIS_URL": redis.url})
    try:
        wait_healthy(c, url_c, tmp_path / "c.log", timeout=30)
        health = httpx.get(f"{url_c}/health", timeout=5).json()
        assert health["status"] == "degraded" and health["checks"]["redis"] != "ok", health
        assert "redis" in (tmp_path / "c.log").read_text().lower()
        done = _follow(url_c, job["id"])
        assert done == events

        # Redis returns: the replicas use it again.
        redis.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url_c}/health", timeout=5).json()["checks"]["redis"] != "ok":
            assert time.monotonic() < deadline, "replica never reconnected to redis"
            time.sleep(0.2)
        again = httpx.post(f"{url_a}/v1/responses", headers=HEADERS, timeout=10, json={
            "model": "test/echo", "input": "[[long:20]] [[delay:20]]", "background": True}).json()
        followed = _follow(url_c, again["id"])
        assert followed[-1]["type"] == "response.completed"
        assert [e["sequence_number"] for e in followed] == list(range(len(followed)))
    finally:
        stop(c)
