"""How fast the console's list endpoint stays with many stored responses.

    python benchmarks/console_list.py [--rows 10000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Seeds ``--rows`` realistic responses (a user message in, an assistant
message out, usage, metadata; 1 in 100 on a rare model, 1 in 20 failed) for
one tenant through the store, plus as many for a second tenant, then times
``GET /v1/responses`` over HTTP against a real server (uvicorn in this
process's thread): the first page, every page of a full cursor walk (newest
to oldest, limit 100), a model filter that is common and one that is rare,
a metadata filter, a status filter and an id-prefix search. Reports the
median and p95 of each in milliseconds; ``measure`` is also what
``tests/console/test_console_scale.py`` asserts on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from responsa.api.app import create_app  # noqa: E402
from responsa.config import load_settings  # noqa: E402
from responsa.store import open_store  # noqa: E402

KEY = "bench-key-one"
OTHER = "bench-key-two"


def _tenant(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _response(n: int, start: int) -> dict[str, Any]:
    rid = f"resp_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"
    text = f"Answer number {n}: " + "lorem ipsum " * 20
    return {
        "id": rid, "object": "response", "created_at": start + n // 4, "completed_at": start + n // 4 + 1,
        "status": "failed" if n % 20 == 7 else "completed",
        "model": "test/rare" if n % 100 == 3 else "test/echo",
        "output": [{"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "metadata": {"batch": str(n % 10), "user": f"u{n % 37}"}, "previous_response_id": None,
        "conversation_id": None, "background": False, "error": None,
        "usage": {"input_tokens": 12, "output_tokens": 48, "total_tokens": 60,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }


async def seed(url: str, rows: int, keys: tuple[str, ...] = (KEY, OTHER)) -> None:
    store = open_store(url)
    await store.open()
    start = int(time.time()) - rows
    try:
        sem = asyncio.Semaphore(8)

        async def one(tenant: str, n: int) -> None:
            resp = _response(n, start)
            async with sem:
                await store.record_response(tenant, resp, {"model": resp["model"], "input": "question"},
                                            [{"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": f"question {n}"}]}])

        for tenant in map(_tenant, keys):
            for lo in range(0, rows, 500):
                await asyncio.gather(*(one(tenant, n) for n in range(lo, min(lo + 500, rows))))
        if url.startswith("postgres"):
            # What autovacuum does soon after a bulk load in production; a
            # planner without statistics sorts the whole tenant instead.
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                await conn.execute("ANALYZE responses")
            finally:
                await conn.close()
    finally:
        await store.close()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2), "n": len(ordered)}


def measure(base: str, rows: int, repeat: int = 20) -> dict[str, Any]:
    """Timings (ms) of the list endpoint on a server whose tenant ``KEY`` has ``rows`` responses."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {KEY}"}, timeout=60) as c:
        def timed(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
            t = time.perf_counter()
            r = c.get("/v1/responses", params=params)
            elapsed = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text
            return elapsed, r.json()

        for _ in range(3):  # warm up
            timed({"limit": 20})
        out["first page (20)"] = _ms([timed({"limit": 20})[0] for _ in range(repeat)])
        walk: list[float] = []
        seen = 0
        after = None
        while True:
            elapsed, body = timed({"limit": 100, **({"after": after} if after else {})})
            walk.append(elapsed)
            seen += len(body["data"])
            if not body["has_more"]:
                break
            after = body["last_id"]
        assert seen == rows, (seen, rows)
        out["cursor walk, every page (100)"] = _ms(walk)
        deep_cursor = after
        out["last page by cursor (20)"] = _ms([timed({"limit": 20, "after": deep_cursor})[0] for _ in range(repeat)])
        for label, params in [("model=test/echo (common)", {"model": "test/echo"}),
                              ("model=test/rare (1%)", {"model": "test/rare"}),
                              ("metadata[user]=u5", {"metadata[user]": "u5"}),
                              ("status=failed", {"status": "failed"}),
                              ("id_prefix", {"id_prefix": "resp_ab"})]:
            out[label] = _ms([timed({"limit": 20, **params})[0] for _ in range(repeat)])
    return out


def run(url: str, rows: int) -> dict[str, Any]:
    from tests.helpers import serve_in_thread

    asyncio.run(seed(url, rows))
    settings = load_settings(None, database_url=url, default_model="test/echo")
    with serve_in_thread(create_app(settings), lifespan="on") as base:
        return measure(base, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL database to measure too, in a new schema dropped afterwards")
    args = parser.parse_args()
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        schema = f"console_bench_{uuid.uuid4().hex[:8]}"
        if args.postgres:
            from tests.store.backends import admin, with_search_path

            asyncio.run(admin(args.postgres, f'CREATE SCHEMA "{schema}"'))
            targets.append(("PostgreSQL", with_search_path(args.postgres, schema)))
        try:
            for name, url in targets:
                print(f"{name}: {args.rows} responses for this key (+{args.rows} for another)")
                for label, stats in run(url, args.rows).items():
                    print(f"  {label:32s} median {stats['median']:7.2f} ms   p95 {stats['p95']:7.2f} ms"
                          f"   (n={stats['n']})")
        finally:
            if args.postgres:
                asyncio.run(admin(args.postgres, f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
