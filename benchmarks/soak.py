"""A bounded soak: one real ``responsa serve`` process (SQLite file store,
deterministic ``test`` model) under a mixed load for a fixed time, then the
numbers that say whether anything was left stuck, leaked or unbounded.

    python benchmarks/soak.py [--seconds 60] [--workers 16] [--database-url sqlite:///...]
                              [--json]

Load, per worker, round-robin: a plain create; a streamed create; a chained
turn (``previous_response_id``); a background create polled to its end; a
background create cancelled mid-way; a streamed create dropped by its client
mid-stream; a GET, an ``input_items`` list and a DELETE of earlier responses.

Reported: requests, errors (transport errors and 5xx; 4xx only where none
is expected), requests/s, non-terminal rows left after a short settle
(``queued``/``in_progress``: must be 0), the server's RSS and the SQLite
WAL size before and after (the WAL must stay bounded: ``store.sqlite``
caps it). Exit status 1 if anything is left non-terminal, errors occurred,
or the WAL exceeded ``--wal-limit-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, free_port, rss_mb

TERMINAL = ("completed", "failed", "incomplete", "cancelled")


def wal_mb(db: Path) -> float:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size / 2**20 if wal.exists() else 0.0


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    max_wal_mb: float = 0.0

    def ok(self, kind: str) -> None:
        self.requests += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def bad(self, kind: str, why: str) -> None:
        self.requests += 1
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {why[:300]}")


async def _create(c: httpx.AsyncClient, t: Tally, body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    r = await c.post("/v1/responses", json=body)
    if r.status_code != 200:
        t.bad(kind, f"{r.status_code} {r.text}")
        return None
    t.ok(kind)
    out: dict[str, Any] = r.json()
    t.ids.append(out["id"])
    return out


async def _stream(c: httpx.AsyncClient, t: Tally, body: dict[str, Any], kind: str, drop_after: int = 0) -> None:
    seen = 0
    async with c.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        if r.status_code != 200:
            t.bad(kind, f"{r.status_code} {(await r.aread()).decode()}")
            return
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                seen += 1
                if seen == 1:
                    t.ids.append(json.loads(line[6:])["response"]["id"])
                if drop_after and seen >= drop_after:
                    break  # the client goes away mid-stream
            if line == "data: [DONE]":
                break
    t.ok(kind)


async def _poll(c: httpx.AsyncClient, t: Tally, rid: str, kind: str, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        r = await c.get(f"/v1/responses/{rid}")
        if r.status_code != 200:
            t.bad(kind, f"{r.status_code} {r.text}")
            return
        if r.json()["status"] in TERMINAL:
            t.ok(kind)
            return
        await asyncio.sleep(0.1)
    t.bad(kind, f"{rid} not terminal after {deadline_s} s")


async def worker(url: str, n: int, until: float, t: Tally) -> None:
    headers = {"authorization": f"Bearer soak-{n % 4}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
        prev: str | None = None
        step = 0
        while time.monotonic() < until:
            step += 1
            kind = step % 8
            try:
                if kind == 0:
                    out = await _create(c, t, {"model": "test/echo", "input": f"hello {step}"}, "create")
                    prev = out["id"] if out else prev
                elif kind == 1:
                    await _stream(c, t, {"model": "test/echo", "input": "[[long:40]]"}, "stream")
                elif kind == 2 and prev:
                    out = await _create(c, t, {"model": "test/echo", "input": "again",
                                               "previous_response_id": prev}, "chain")
                    prev = out["id"] if out else None
                elif kind == 3:
                    out = await _create(c, t, {"model": "test/echo", "input": "[[long:30]] [[delay:5]]",
                                               "background": True}, "background")
                    if out:
                        await _poll(c, t, out["id"], "poll")
                elif kind == 4:
                    out = await _create(c, t, {"model": "test/echo", "input": "[[long:500]] [[delay:20]]",
                                               "background": True}, "background")
                    if out:
                        await asyncio.sleep(0.1)
                        r = await c.post(f"/v1/responses/{out['id']}/cancel")
                        if r.status_code == 200:
                            t.ok("cancel")
                        else:
                            t.bad("cancel", f"{r.status_code} {r.text}")
                elif kind == 5:
                    await _stream(c, t, {"model": "test/echo", "input": "[[long:300]] [[delay:5]]"}, "dropped",
                                  drop_after=5)
                elif kind == 6 and t.ids:
                    rid = t.ids[(step * 7919) % len(t.ids)]
                    for path in (f"/v1/responses/{rid}", f"/v1/responses/{rid}/input_items"):
                        r = await c.get(path)
                        if r.status_code >= 500:
                            t.bad("get", f"{r.status_code} {r.text}")
                        else:
                            t.ok("get")
                elif kind == 7 and len(t.ids) > 50:
                    rid = t.ids.pop(0)
                    r = await c.delete(f"/v1/responses/{rid}")
                    if r.status_code >= 500:
                        t.bad("delete", f"{r.status_code} {r.text}")
                    else:
                        t.ok("delete")
            except httpx.HTTPError as exc:
                t.bad(f"kind{kind}", repr(exc))


def non_terminal(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM responses WHERE status IN ('queued', 'in_progress')")
                   .fetchone()[0])


async def watch_wal(db: Path, t: Tally, until: float) -> None:
    while time.monotonic() < until:
        t.max_wal_mb = max(t.max_wal_mb, wal_mb(db))
        await asyncio.sleep(0.25)


async def soak(url: str, seconds: float, workers: int, db: Path | None) -> Tally:
    t = Tally()
    until = time.monotonic() + seconds
    tasks = [worker(url, n, until, t) for n in range(workers)]
    if db is not None:
        tasks.append(watch_wal(db, t, until))
    await asyncio.gather(*tasks)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    ap.add_argument("--wal-limit-mb", type=float, default=256)
    ap.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="responsa-soak-"))
    db = tmp / "soak.db"
    database_url = args.database_url or f"sqlite:///{db}"
    sqlite_db = Path(database_url.removeprefix("sqlite:///").split("?")[0]) if database_url.startswith(
        "sqlite:///") else None
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}",
           "RESPONSA_LOCAL_THREADS": "1", "RESPONSA_BACKGROUND_LEASE_S": "5"}
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--port", str(port), "--model",
                             "test/echo", "--database-url", database_url, "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {tmp / 'server.log'}")
            time.sleep(0.1)
        rss_before = rss_mb(proc.pid)
        wal_before = wal_mb(sqlite_db) if sqlite_db else 0.0
        began = time.monotonic()
        t = asyncio.run(soak(url, args.seconds, args.workers, sqlite_db))
        elapsed = time.monotonic() - began
        # Let cancelled / dropped / background work settle (bounded), then count.
        left = -1
        settle_until = time.monotonic() + 30
        while sqlite_db is not None and time.monotonic() < settle_until:
            left = non_terminal(sqlite_db)
            if left == 0:
                break
            time.sleep(0.5)
        health = httpx.get(f"{url}/health", timeout=10).json()
        result = {
            "seconds": round(elapsed, 1), "workers": args.workers, "requests": t.requests, "errors": t.errors,
            "rps": round(t.requests / elapsed, 1), "by_kind": t.by_kind, "non_terminal_rows": left,
            "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_mb(proc.pid), 1),
            "wal_mb_before": round(wal_before, 2), "wal_mb_max": round(t.max_wal_mb, 2),
            "wal_mb_after": round(wal_mb(sqlite_db), 2) if sqlite_db else None,
            "db_mb": round(sqlite_db.stat().st_size / 2**20, 1) if sqlite_db else None,
            "health": health.get("status"), "error_samples": t.error_samples,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    bad = result["errors"] or result["non_terminal_rows"] not in (0, -1) or \
        (result["wal_mb_max"] or 0) > args.wal_limit_mb
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
