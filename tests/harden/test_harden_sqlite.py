"""Faults 3 and 7 on the real SQLite file: the WAL stays bounded under
constant writes and overlapping readers (PASSIVE checkpoints alone let it
grow without end), and a checkpointer that fails (file descriptors
exhausted) is restarted and shows in ``/health`` instead of dying silently."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import load_settings
from responsa.store import sqlite as sqlite_store
from responsa.store import sqlite_lib
from responsa.store.sqlite import SQLiteStore
from tests.helpers import serve_in_thread

CAP = 2 * 1024 * 1024


def _response(i: int) -> dict[str, object]:
    rid = f"resp_{uuid.uuid4().hex}"
    text = f"{i} " + "x" * 8000
    return {"id": rid, "object": "response", "status": "completed", "created_at": 0, "model": "test/echo",
            "output": [{"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                        "status": "completed", "content": [{"type": "output_text", "text": text}]}]}


@pytest.mark.slow
async def test_wal_stays_bounded_under_load_with_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_CAP_BYTES", CAP)
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_S", 0.05)
    path = str(tmp_path / "wal.db")
    store = SQLiteStore(path)
    await store.open()
    stop = threading.Event()

    def reader() -> None:
        """Back-to-back read transactions from another connection (another replica, a backup, a console)."""
        db = sqlite_lib.connect(path, isolation_level=None, timeout=5)
        while not stop.is_set():
            db.execute("BEGIN")
            db.execute("SELECT COUNT(*), MAX(created_at) FROM responses").fetchone()
            time.sleep(0.002)
            db.execute("COMMIT")
        db.close()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    max_wal = 0
    written = 0
    try:
        began = time.monotonic()
        i = 0
        while written < 8 * CAP and time.monotonic() - began < 60:
            i += 1
            resp = _response(i)
            await store.record_response("t", resp, {"model": "test/echo", "input": "x"},
                                        [{"type": "message", "role": "user", "content": "x"}])
            written += 8200
            max_wal = max(max_wal, sqlite_store.wal_size(path))
            await asyncio.sleep(0.002)  # a steady write rate (~20 MiB/s of WAL), not a tight loop
    finally:
        stop.set()
        for t in readers:
            t.join()
    settle = time.monotonic() + 5
    while sqlite_store.wal_size(path) > CAP and time.monotonic() < settle:
        await asyncio.sleep(0.05)
    final = sqlite_store.wal_size(path)
    truncations = store.driver.truncations
    await store.close()
    assert written >= 8 * CAP, "the load did not run long enough to mean anything"
    assert truncations >= 1
    # Bounded by the cap plus a tick of writes; PASSIVE-only checkpoints let
    # it grow with everything written (tens of MiB here, GBs in production).
    assert max_wal < 8 * CAP, f"WAL reached {max_wal / 2**20:.1f} MiB with a {CAP / 2**20:.0f} MiB cap"
    assert final <= CAP, f"WAL left at {final / 2**20:.1f} MiB"


async def test_failed_checkpointer_is_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_S", 0.05)
    real = sqlite_store._checkpoint_connect
    failures = [0]

    def flaky(path: str) -> sqlite_lib.Connection:
        if failures[0] < 2:
            failures[0] += 1
            raise sqlite_lib.OperationalError("unable to open database file")  # what EMFILE looks like here
        return real(path)

    monkeypatch.setattr(sqlite_store, "_checkpoint_connect", flaky)
    path = str(tmp_path / "fd.db")
    store = SQLiteStore(path)
    await store.open()
    try:
        deadline = time.monotonic() + 10
        while store.driver.supervisor.status()["sqlite-checkpoints"]["restarts"] < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        status = store.driver.supervisor.status()["sqlite-checkpoints"]
        assert "unable to open database file" in status["last_error"]
        assert not store.driver.supervisor.healthy  # visible, for a while
        # ... and it works again.
        while store.driver.checkpoints < 3:
            assert time.monotonic() < deadline + 10, "the restarted checkpointer never checkpointed"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


def test_health_reports_a_failing_background_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str) -> sqlite_lib.Connection:
        raise sqlite_lib.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite_store, "_checkpoint_connect", broken)
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path / 'h.db'}", default_model="test/echo")
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        deadline = time.monotonic() + 10
        while True:
            health = httpx.get(f"{url}/health", timeout=5).json()
            task = health.get("checks", {}).get("tasks", {}).get("sqlite-checkpoints")
            if task and task["restarts"] >= 1:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health["status"] == "degraded"
        assert "unable to open database file" in task["last_error"]
        # The server itself still answers.
        r = httpx.post(f"{url}/v1/responses", json={"model": "test/echo", "input": "hi"}, timeout=10)
        assert r.status_code == 200
