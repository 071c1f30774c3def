"""``responsa serve --workers N``: real server processes on one port.

Requests land on every worker (``/healthz`` says which process answered),
and a background response created through one worker is followed and
cancelled through another (Redis carries the live tail and the cancel, the
shared SQLite file everything else). SIGTERM to the server stops every
worker; a worker that dies is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harden.support import start, stop, wait_healthy
from tests.helpers import OwnRedis, validate_stream, wait_until

HEADERS = {"authorization": "Bearer workers"}


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    redis = OwnRedis(tmp_path)
    redis.start()
    proc, url = start(tmp_path / "serve.log", "--workers", "2", "--database-url", f"sqlite:///{tmp_path / 'w.db'}",
                      env={"RESPONSA_REDIS_URL": redis.url})
    try:
        wait_healthy(proc, url, tmp_path / "serve.log", timeout=120)  # two workers start on a busy machine
        yield proc, url
    finally:
        stop(proc)
        redis.stop()


def _pid(client: httpx.Client) -> int:
    pid: int = client.get("/healthz").json()["pid"]
    return pid


def _client_per_worker(url: str, n: int) -> dict[int, httpx.Client]:
    """One keep-alive client (one connection) per worker, found by opening
    connections until each worker has answered one."""
    clients: dict[int, httpx.Client] = {}

    def more() -> bool:
        client = httpx.Client(base_url=url, headers=HEADERS, timeout=30)
        pid = _pid(client)
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        return len(clients) == n

    wait_until(more, 60, what=f"connections landing on {n} different workers")
    return clients


def _follow(client: httpx.Client, rid: str) -> list[dict[str, Any]]:
    events = []
    with client.stream("GET", f"/v1/responses/{rid}", params={"stream": "true"}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line[6:]))
    return events


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_requests_land_on_every_worker_and_background_jobs_cross_them(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = two_workers
    clients = _client_per_worker(url, 2)
    assert set(clients) == _children(proc.pid)  # the workers are the server's own processes
    one, other = clients.values()
    try:
        # Created on one worker, followed from the other: every event, in order, to the end.
        job = one.post("/v1/responses", json={"model": "test/echo", "input": "[[long:30]] [[delay:20]]",
                                              "background": True}).json()
        events = _follow(other, job["id"])
        validate_stream(events)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[-1]["type"] == "response.completed"
        assert other.get(f"/v1/responses/{job['id']}").json()["status"] == "completed"

        # Cancelled through the other worker: takes effect on the one running it.
        victim = one.post("/v1/responses", json={"model": "test/echo", "input": "[[long:3000]] [[delay:20]]",
                                                 "background": True}).json()
        wait_until(lambda: one.get(f"/v1/responses/{victim['id']}").json()["status"] == "in_progress", 30)
        r = other.post(f"/v1/responses/{victim['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        final = _follow(one, victim["id"])
        assert final[-1]["type"] == "response.failed" and final[-1]["response"]["status"] == "cancelled"
        seen = len(final)
        wait_until(lambda: one.get(f"/v1/responses/{victim['id']}").json()["status"] == "cancelled", 10)
        assert len(_follow(other, victim["id"])) == seen  # the runner stopped writing

        # Foreground responses chain across workers through the shared database.
        first = one.post("/v1/responses", json={"model": "test/echo", "input": "alpha"}).json()
        second = other.post("/v1/responses", json={"model": "test/echo", "input": "beta",
                                                   "previous_response_id": first["id"]})
        assert second.status_code == 200, second.text
    finally:
        for client in clients.values():
            client.close()


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = two_workers
    clients = _client_per_worker(url, 2)
    for client in clients.values():
        client.close()
    victim = min(clients)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(_children(proc.pid) - {victim}) == 2, 60, what="a replacement worker")
    replacement = (_children(proc.pid) - set(clients)).pop()
    assert replacement in _client_per_worker(url, 2)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_more_than_one_worker_needs_redis(tmp_path: Path) -> None:
    """Without Redis, per-key limits would be counted per worker (N times
    the limit) and live tails would not cross workers: refused, saying why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSA_")}
    done = subprocess.run([sys.executable, "-m", "responsa.cli", "serve", "--workers", "2", "--model", "test/echo",
                           "--database-url", f"sqlite:///{tmp_path / 'n.db'}"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers > 1 needs redis_url" in done.stderr
