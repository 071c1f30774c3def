"""Fault 1: a stored foreground response (a stream) never stays
``in_progress`` after its server dies (kill -9) or cannot write its ending
(database outage): it carries a lease like a background job, and the
sweeper ends it (``failed``, ``worker_lost``) within the lease."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harden.support import start, stop, wait_healthy

HEADERS = {"authorization": "Bearer foreground"}


def _open_streams(url: str, n: int) -> list[str]:
    ids: list[str] = []
    ready = threading.Barrier(n + 1, timeout=30)

    def consume() -> None:
        try:
            with httpx.stream("POST", f"{url}/v1/responses", headers=HEADERS, timeout=60, json={
                    "model": "test/echo", "input": "[[long:100000]] [[delay:100]]", "stream": True}) as r:
                lines = r.iter_lines()
                for line in lines:
                    if line.startswith("data: {"):
                        ev = json.loads(line[6:])
                        if ev["type"] == "response.created":
                            ids.append(ev["response"]["id"])
                        if ev["type"] == "response.output_text.delta":
                            break
                ready.wait()
                for _ in lines:
                    pass
        except (httpx.HTTPError, threading.BrokenBarrierError):
            pass

    for _ in range(n):
        threading.Thread(target=consume, daemon=True).start()
    ready.wait()
    return ids


def _status(url: str, rid: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/responses/{rid}", headers=HEADERS, timeout=10).json()
    return body


@pytest.mark.parametrize("streams", [3])
def test_kill_9_mid_stream_leaves_nothing_in_progress(tmp_path: Path, streams: int) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"RESPONSA_BACKGROUND_LEASE_S": "2"}
    a, url = start(tmp_path / "a.log", "--database-url", db, env=env)
    try:
        wait_healthy(a, url, tmp_path / "a.log")
        ids = _open_streams(url, streams)
        assert len(ids) == streams
        assert all(_status(url, rid)["status"] == "in_progress" for rid in ids)
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
    finally:
        stop(a)
    b, url = start(tmp_path / "b.log", "--database-url", db, env=env)
    try:
        wait_healthy(b, url, tmp_path / "b.log")
        deadline = time.monotonic() + 15
        while True:
            states = [_status(url, rid) for rid in ids]
            if all(s["status"] == "failed" for s in states) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [s["status"] for s in states] == ["failed"] * streams, [s["status"] for s in states]
        assert all(s["error"]["code"] == "worker_lost" for s in states)
    finally:
        stop(b)


def test_database_outage_at_the_end_is_retried_until_stored(tmp_path: Path) -> None:
    """The final write fails (the database is unreachable for a moment):
    the ending is kept and written once the store answers again."""
    from responsa.api.app import create_app
    from responsa.config import load_settings
    from tests.helpers import serve_in_thread

    settings = load_settings(None, database_url=f"sqlite:///{tmp_path / 'o.db'}", default_model="test/echo")
    app = create_app(settings)
    with serve_in_thread(app, lifespan="on") as url:
        store = app.state.responsa.store
        real = store.finish_response
        outage = [3]

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if outage[0] > 0:
                outage[0] -= 1
                raise OSError("database unreachable")
            return await real(*args, **kwargs)

        store.finish_response = flaky
        rid = None
        try:
            with httpx.stream("POST", f"{url}/v1/responses", headers=HEADERS, timeout=30, json={
                    "model": "test/echo", "input": "[[long:5]]", "stream": True}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {") and rid is None:
                        rid = json.loads(line[6:])["response"]["id"]
        except httpx.HTTPError:
            pass  # the stream broke when its ending could not be stored
        assert rid is not None
        deadline = time.monotonic() + 15
        while _status(url, rid)["status"] == "in_progress":
            assert time.monotonic() < deadline, "the response stayed in_progress after the outage"
            time.sleep(0.2)
        assert _status(url, rid)["status"] in ("completed", "failed")
