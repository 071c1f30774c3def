"""Continuing a ``previous_response_id`` chain 1, 100 or 1,000 responses
deep: what Responsa adds over a direct call that sends the same history
(2 x depth + 1 messages) to the same fake upstream, so the bytes that must
travel either way cancel out and what is left is loading and translating
the chain.

Chains are written through the store contract (``record_response``) before
the server starts: building a 1,000-deep chain through the API would cost
O(depth^2) upstream traffic for nothing. llama-stack has no such door, so
its chains are built through its API (``build_via_api``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from typing import Any

import aiohttp
import orjson
from _harness import ROOT  # noqa: F401  (sys.path: run_all puts ROOT/src first)
from load import Calls, Target, added, point

KEY = "bench-key"
TENANT = hashlib.sha256(KEY.encode()).hexdigest()[:32]


def _message(role: str, text: str) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "output_text"
    part: dict[str, Any] = {"type": kind, "text": text}
    if role == "assistant":
        part["annotations"] = []
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": role, "status": "completed",
            "content": [part]}


def history(depth: int) -> list[dict[str, Any]]:
    """The chat messages a chain of ``depth`` turns becomes upstream."""
    out: list[dict[str, Any]] = []
    for n in range(depth):
        out += [{"role": "user", "content": f"question {n}"},
                {"role": "assistant", "content": f"You said: question {n}"}]
    return out


async def seed_chain(database_url: str, depth: int) -> str:
    """Write a chain of ``depth`` finished responses for ``TENANT``; the id
    of its last. The ids are drawn first, so the rows are written 16 at a
    time (a chain is links between ids, not an order of insertion)."""
    from responsa.store import open_store

    store = open_store(database_url)
    await store.open()
    ids = [f"resp_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}" for _ in range(depth)]
    now = int(time.time()) - depth
    gate = asyncio.Semaphore(16)

    async def write(n: int) -> None:
        previous = ids[n - 1] if n else None
        response = {"id": ids[n], "object": "response", "created_at": now + n, "completed_at": now + n,
                    "status": "completed", "model": "fake/fake-model", "previous_response_id": previous,
                    "conversation_id": None, "background": False, "error": None, "metadata": {},
                    "output": [_message("assistant", f"You said: question {n}")],
                    "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}}
        request = {"model": "fake/fake-model", "input": f"question {n}", "previous_response_id": previous}
        async with gate:
            await store.record_response(TENANT, response, request, [_message("user", f"question {n}")])

    try:
        await asyncio.gather(*(write(n) for n in range(depth)))
    finally:
        await store.close()
    return ids[-1]


async def build_via_api(http: aiohttp.ClientSession, target: Target, depth: int) -> str:
    """A chain of ``depth`` turns through ``target``'s own API (one request per turn)."""
    previous: str | None = None
    headers = {"content-type": "application/json", **target.headers}
    for n in range(depth):
        body: dict[str, Any] = {"model": target.model, "input": f"question {n}"}
        if previous:
            body["previous_response_id"] = previous
        async with http.post(f"{target.url}/v1/responses", data=orjson.dumps(body), headers=headers) as r:
            out = await r.json(loads=orjson.loads)
            if r.status != 200:
                raise RuntimeError(f"{target.name} chain turn {n}: {r.status} {str(out)[:300]}")
        previous = out["id"]
    assert previous is not None
    return previous


async def continue_chain(http: aiohttp.ClientSession, upstream: str, upstream_pid: int, target: Target,
                         tips: dict[int, str], requests: int, backend: str, seconds: float) -> list[dict[str, Any]]:
    """Time ``requests`` continuations of each chain (one at a time) against
    the direct call with the same history."""
    calls = Calls(http, upstream, target)
    rows = []
    for depth, tip in sorted(tips.items()):
        through = calls.through(stream=False, text="and one more", previous=tip)
        direct = calls.direct("and one more", history(depth))
        await point(calls, through, 3, 1, None)
        base = await point(calls, direct, requests, 1, upstream_pid, seconds)
        got = await point(calls, through, requests, 1, target.pid, seconds)
        rows.append({"target": target.name, "backend": backend, "depth": depth, "direct": base, "through": got,
                     **added(base, got)})
    return rows
