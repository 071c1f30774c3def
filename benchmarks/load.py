"""The loads of the benchmark suite (``run_all.py``), each measured against
a direct call to the same fake upstream in the same run: added latency at a
given concurrency, streamed events relayed per second, the RSS of many
open streams, and the cost of continuing a long ``previous_response_id``
chain.

A ``Target`` is any Responses API server in front of the fake upstream
(Responsa, llama-stack): its URL, the model name it knows the fake by, and
the pid whose CPU time and RSS are read from ``/proc``. The client is aiohttp
(a third of httpx's CPU per request): on two cores the load generator's own
cost is taken from the servers, so it has to be small, and both paths (direct
and through) pay it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from _harness import PROMPT, measure, pct, tree_cpu_seconds, tree_rss_mb


@dataclass
class Target:
    name: str
    url: str
    model: str
    pid: int
    headers: dict[str, str] = field(default_factory=dict)


def session(connections: int = 1100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
                                 timeout=aiohttp.ClientTimeout(total=300))


def chat_body(text: str, *, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a Responses server sends upstream for ``text``: the direct baseline."""
    return {"model": "fake-model", "messages": [*(history or []), {"role": "user", "content": text}],
            "stream": True, "stream_options": {"include_usage": True}}


DIRECT_TEXT = b'"delta":{"content":"'  # the fake's first chunk with text (the one before has only the role)
THROUGH_TEXT = b"output_text.delta"


async def read_sse(resp: aiohttp.ClientResponse, marker: bytes, first: list[float], t0: float) -> int:
    """Count the ``data: {...}`` events of a stream; note the time (ms from
    ``t0``) of the first line carrying text (``marker``)."""
    events = 0
    seen = False
    async for line in resp.content:
        if line.startswith(b"data: {"):
            events += 1
            if not seen and marker in line:
                seen = True
                first.append((time.perf_counter() - t0) * 1000)
    return events


class Calls:
    """The request functions the measurement points time."""

    def __init__(self, http: aiohttp.ClientSession, upstream: str, target: Target | None) -> None:
        self.http, self.upstream, self.target = http, upstream, target
        self.first_text: list[float] = []  # ms from the request to each stream's first text

    def direct(self, text: str = PROMPT, history: list[dict[str, Any]] | None = None) -> Callable[[], Awaitable[int]]:
        body = orjson.dumps(chat_body(text, history=history))

        async def call() -> int:
            t0 = time.perf_counter()
            async with self.http.post(f"{self.upstream}/v1/chat/completions", data=body,
                                      headers={"content-type": "application/json"}) as r:
                assert r.status == 200, await r.text()
                return await read_sse(r, DIRECT_TEXT, self.first_text, t0)

        return call

    def through(self, *, stream: bool, store: bool = True, text: str = PROMPT,
                previous: str | None = None) -> Callable[[], Awaitable[int]]:
        assert self.target is not None
        t = self.target
        req: dict[str, Any] = {"model": t.model, "input": text, "stream": stream}
        if not store:
            req["store"] = False
        if previous:
            req["previous_response_id"] = previous
        body = orjson.dumps(req)
        headers = {"content-type": "application/json", **t.headers}

        async def call() -> int:
            t0 = time.perf_counter()
            async with self.http.post(f"{t.url}/v1/responses", data=body, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"{t.name}: {r.status} {(await r.text())[:500]}")
                if stream:
                    return await read_sse(r, THROUGH_TEXT, self.first_text, t0)
                out = orjson.loads(await r.read())
                if out.get("status") != "completed":
                    raise RuntimeError(f"{t.name}: {str(out)[:500]}")
                return 1

        return call


@dataclass
class Sample:
    """One measurement point, possibly gathered in several interleaved rounds."""

    latencies: list[float] = field(default_factory=list)
    first_text: list[float] = field(default_factory=list)
    events: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: float = 0.0
    concurrency: int = 0

    async def run(self, calls: Calls, call: Callable[[], Awaitable[int]], n: int, concurrency: int,
                  pid: int | None, seconds: float | None = None) -> Sample:
        calls.first_text = self.first_text
        cpu0 = tree_cpu_seconds(pid) if pid else 0.0
        t0 = time.perf_counter()
        lat, events = await measure(call, n, concurrency, seconds, self.errors)
        self.elapsed += time.perf_counter() - t0
        self.cpu += tree_cpu_seconds(pid) - cpu0 if pid else 0.0
        self.latencies += lat
        self.events += events
        self.concurrency = concurrency
        return self

    def summary(self, with_cpu: bool = True) -> dict[str, Any]:
        """p50/p99 latency (ms), time to the first text for streams,
        requests/s, and the server's CPU per request."""
        n = len(self.latencies)
        if not n:
            raise RuntimeError(f"every request failed: {self.errors[:3]}")
        out: dict[str, Any] = {"n": n, "concurrency": self.concurrency, "p50_ms": round(pct(self.latencies, 0.5), 3),
                               "p99_ms": round(pct(self.latencies, 0.99), 3), "rps": round(n / self.elapsed, 1),
                               "events": self.events, "errors": len(self.errors), "error_samples": self.errors[:3],
                               "server_cpu_us_per_request": round(self.cpu / n * 1e6, 1) if with_cpu else None}
        if self.first_text:
            out["first_text_p50_ms"] = round(pct(self.first_text, 0.5), 3)
            out["first_text_p99_ms"] = round(pct(self.first_text, 0.99), 3)
        return out


async def point(calls: Calls, call: Callable[[], Awaitable[int]], n: int, concurrency: int,
                pid: int | None, seconds: float | None = None) -> dict[str, Any]:
    """One point in one go (``Sample`` for interleaved rounds)."""
    return (await Sample().run(calls, call, n, concurrency, pid, seconds)).summary(pid is not None)


def added(base: dict[str, Any], through: dict[str, Any]) -> dict[str, Any]:
    """Through minus direct, for the same point."""
    out = {"added_p50_ms": round(through["p50_ms"] - base["p50_ms"], 3),
           "added_p99_ms": round(through["p99_ms"] - base["p99_ms"], 3),
           "ratio_p50": round(through["p50_ms"] / base["p50_ms"], 2) if base["p50_ms"] else None}
    if "first_text_p50_ms" in through and "first_text_p50_ms" in base:
        out["added_first_text_p50_ms"] = round(through["first_text_p50_ms"] - base["first_text_p50_ms"], 3)
    return out


async def latency_sweep(http: aiohttp.ClientSession, upstream: str, upstream_pid: int, target: Target,
                        concurrency: list[int], requests: dict[int, int], seconds: float, *,
                        store_modes: tuple[bool, ...], log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Non-streamed and streamed added latency at each concurrency, each
    store mode. The direct baseline and every mode are measured in up to 4
    interleaved rounds, so a change in the machine's load hits them alike;
    each point gets at most ``requests[c]`` requests and ``seconds``."""
    calls = Calls(http, upstream, target)
    warm = max(10, requests[concurrency[0]] // 4)
    for call in (calls.direct(), calls.through(stream=False), calls.through(stream=True)):
        await measure(call, warm, 8)  # connections, caches, the store
    rows = []
    for c in concurrency:
        n = requests[c]
        rounds = max(1, min(4, n // (c * 8)))
        modes = [(store, stream) for store in store_modes for stream in (False, True)]
        base = Sample()
        got = {m: Sample() for m in modes}
        for _ in range(rounds):
            await base.run(calls, calls.direct(), n // rounds, c, upstream_pid, seconds / rounds)
            for store, stream in modes:
                await got[(store, stream)].run(calls, calls.through(stream=stream, store=store), n // rounds, c,
                                               target.pid, seconds / rounds)
        b = base.summary()
        for (store, stream), sample in got.items():
            t = sample.summary()
            row = {"target": target.name, "mode": "streamed" if stream else "non-streamed", "store": store,
                   "concurrency": c, "rounds": rounds, "direct": b, "through": t, **added(b, t)}
            rows.append(row)
            first = f" first text {row['added_first_text_p50_ms']:+.2f}" if stream else ""
            first += f" ERRORS {t['errors']}" if t["errors"] else ""
            log(f"  {target.name:<12} {row['mode']:<13} store={'on ' if store else 'off'} c={c:<4} "
                f"direct p50 {b['p50_ms']:7.2f} ms  through p50 {t['p50_ms']:7.2f} ms  "
                f"added p50/p99 {row['added_p50_ms']:+7.2f}/{row['added_p99_ms']:+7.2f} ms{first}  "
                f"{t['rps']:6.0f} rps  cpu {t['server_cpu_us_per_request']:.0f} us/req")
    return rows


async def stream_relay(http: aiohttp.ClientSession, upstream: str, upstream_pid: int, target: Target,
                       deltas: int, streams: int, seconds: float) -> dict[str, Any]:
    """Events/s relayed for a ``deltas``-delta answer, one stream at a time,
    and the server's CPU per event."""
    calls = Calls(http, upstream, target)
    text = f"deltas:{deltas}"
    await measure(calls.through(stream=True, text=text), 2, 1)
    base = await point(calls, calls.direct(text), streams, 1, upstream_pid, seconds)
    got = await point(calls, calls.through(stream=True, text=text), streams, 1, target.pid, seconds)

    def rate(p: dict[str, Any]) -> float:
        return round(p["events"] / (p["n"] / p["rps"]), 0)

    per_event = got["server_cpu_us_per_request"] * got["n"] / got["events"]
    return {"target": target.name, "deltas": deltas, "streams": got["n"],
            "direct_events_per_s": rate(base), "through_events_per_s": rate(got),
            "events_per_stream": got["events"] // got["n"], "server_cpu_us_per_event": round(per_event, 2),
            "direct": base, "through": got}


async def open_streams(upstream: str, target: Target, n: int, settle_s: float = 90) -> dict[str, Any]:
    """Hold ``n`` streams open through ``target`` (the fake holds each after
    its first delta) and read the server's RSS once every one has relayed
    that delta."""
    rss_idle = tree_rss_mb(target.pid)
    body = orjson.dumps({"model": target.model, "input": "hold", "stream": True})
    headers = {"content-type": "application/json", **target.headers}
    seen = 0
    all_seen = asyncio.Event()
    release = asyncio.Event()
    errors: list[str] = []

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal seen
        try:
            async with http.post(f"{target.url}/v1/responses", data=body, headers=headers) as r:
                if r.status != 200:
                    errors.append(f"{r.status} {(await r.text())[:200]}")
                    return
                async for line in r.content:
                    if b"output_text.delta" in line:
                        seen += 1
                        if seen == n:
                            all_seen.set()
                        break
                await release.wait()
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(repr(exc))

    async with session(n + 50) as http, aiohttp.ClientSession() as probe:
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one(http)) for _ in range(n)]
        with contextlib.suppress(TimeoutError):  # then fewer than n relay: the JSON says how many
            await asyncio.wait_for(all_seen.wait(), settle_s)
        opened_s = time.perf_counter() - t0
        rss_open = tree_rss_mb(target.pid)
        async with probe.get(f"{upstream}/stats") as r:
            held = await r.json()
        release.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"target": target.name, "streams": n, "streams_relaying": seen, "upstream_held": held["open"],
            "open_seconds": round(opened_s, 2), "rss_idle_mb": round(rss_idle, 1), "rss_open_mb": round(rss_open, 1),
            "kb_per_stream": round((rss_open - rss_idle) * 1024 / max(seen, 1), 1), "errors": errors[:5],
            "error_count": len(errors)}
