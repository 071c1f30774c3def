"""What one stored response costs the SQLite store, in one process, without
HTTP: pages written to the WAL, write() system calls and CPU per response,
at a given concurrency (group commit shares a commit between the responses
queued together).

    python benchmarks/store_write.py [--responses 2000] [--concurrency 1 32] [--mode record stream]

``record`` is the non-streamed write (one transaction: response + items);
``stream`` is a stream's pair (the row with a lease at the start, the ending
at the end). WAL frames are counted from the WAL file's growth (automatic
checkpoints are off and the background checkpointer is held back), write
calls from ``/proc/self/io`` (``syscw``). Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from typing import Any

from responsa.protocol.ids import new_id
from responsa.store import sqlite as sqlite_store
from responsa.store.sqlite import SQLiteStore

REQUEST = {"model": "test", "input": "Tell me about the weather in Paris today please"}
PAGE = 4096


def _response(status: str = "completed") -> dict[str, Any]:
    text = "The weather in Paris today is mild, 14C, light clouds. " * 3
    return {"id": new_id("resp"), "object": "response", "created_at": int(time.time()), "status": status,
            "background": False, "model": "test", "instructions": None, "previous_response_id": None,
            "conversation_id": None, "error": None, "incomplete_details": None, "metadata": {}, "store": True,
            "output": [{"id": new_id("msg"), "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}],
            "usage": {"input_tokens": 12, "output_tokens": 40, "total_tokens": 52}, "tools": [],
            "tool_choice": "auto", "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}}


def _inputs() -> list[dict[str, Any]]:
    return [{"id": new_id("msg"), "type": "message", "role": "user",
             "content": [{"type": "input_text", "text": REQUEST["input"]}]}]


def _write_calls() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("syscw"))


async def measure(mode: str, n: int, concurrency: int) -> dict[str, Any]:
    sqlite_store.CHECKPOINT_S = 24 * 3600  # the WAL only grows while we count it
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        store = SQLiteStore(path)
        await store.open()

        async def one() -> None:
            done = _response()
            if mode == "record":
                await store.record_response("t", done, REQUEST, _inputs())
                return
            await store.create_response("t", {**done, "status": "in_progress", "output": []}, REQUEST, _inputs(),
                                        lease=("bench", time.time() + 30))
            await store.finish_response("t", done)

        for _ in range(50):  # warm: tables past their first pages
            await one()
        remaining = iter(range(n))

        async def worker() -> None:
            for _ in remaining:
                await one()

        commits_before = getattr(store.driver, "commits", None)  # None: a driver without group commit (before)
        wal, calls = sqlite_store.wal_size(path), _write_calls()
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = {"mode": mode, "responses": n, "concurrency": concurrency,
                  "wal_pages_per_response": round((sqlite_store.wal_size(path) - wal) / (PAGE + 24) / n, 2),
                  "write_calls_per_response": round((_write_calls() - calls) / n, 2),
                  "responses_per_commit": None if commits_before is None else
                  round(n / max(1, store.driver.commits - commits_before), 1),
                  "cpu_us_per_response": round(cpu / n * 1e6, 1), "wall_us_per_response": round(wall / n * 1e6, 1)}
        await store.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--mode", nargs="+", choices=["record", "stream"], default=["record", "stream"])
    args = parser.parse_args()
    for mode in args.mode:
        for c in args.concurrency:
            print(json.dumps(asyncio.run(measure(mode, args.responses, c))), flush=True)


if __name__ == "__main__":
    main()
