"""What metrics, the access log and the per-key gate cost per request,
measured in process where microseconds are visible (an end-to-end run
through ``overhead.py`` has about +-100 us of noise per request on a shared
machine).

    python benchmarks/observability_cost.py [--requests 20000] [--events 20]

1. The ASGI middleware (request id, Observation, gate in open mode,
   Prometheus counters and histograms, one JSON access line written to a
   file) around a trivial app, against the same app bare.
2. The wrappers a streamed response goes through per event: the provider
   wrapper (timing, token metrics) and the turn decorator (response id,
   usage), against the raw generators.
3. The store wrapper per store call.

Tracing stays off (its cost when off is one global test per hook).
Times are CPU time of this process (``time.process_time``), not wall time:
on a shared machine wall time mostly measures waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from responsa.keys.db import OpsDB
from responsa.keys.gate import KeyGate
from responsa.keys.limits import MemoryLimiter
from responsa.observability import context, logs
from responsa.observability.instrument import ObservedProvider, instrument_store, observed_turn
from responsa.observability.middleware import ObservabilityMiddleware
from responsa.providers import base as m

HEADERS = [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer sk-bench-key"),
           (b"content-type", b"application/json"), (b"content-length", b"40")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["endpoint"] = app
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    pass


async def per_request(asgi: Any, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": HEADERS}
    for _ in range(200):
        await asgi(dict(scope), _receive, _send)
    t0 = time.process_time()
    for _ in range(n):
        await asgi(dict(scope), _receive, _send)
    return (time.process_time() - t0) / n * 1e6


class FakeProvider:
    name = "fake"

    def __init__(self, events: int) -> None:
        self.events = events

    def capabilities(self, model: str) -> m.Capabilities:
        return m.Capabilities()

    async def stream(self, req: m.ModelRequest) -> AsyncIterator[m.ModelEvent]:
        for _ in range(self.events):
            yield m.TextDelta("word ")
        yield m.Usage(10, self.events)
        yield m.Finish("stop")

    async def list_models(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        pass


async def per_stream(provider: Any, turn_wrap: Any, n: int) -> float:
    req = m.ModelRequest(model="m", items=[])

    async def turn() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "response.created", "response": {"id": "resp_1", "model": "fake/m"}}
        async for ev in provider.stream(req):
            yield {"type": "response.output_text.delta", "delta": getattr(ev, "text", "")}
        yield {"type": "response.completed", "response": {"id": "resp_1", "model": "fake/m",
                                                          "usage": {"input_tokens": 1, "output_tokens": 2}}}

    run = turn_wrap(turn) if turn_wrap else turn
    t0 = time.process_time()
    for _ in range(n):
        async for _ev in run():
            pass
    return (time.process_time() - t0) / n * 1e6


class Store:
    async def get_response(self, tenant: str, rid: str) -> None:
        return None


async def per_store_call(store: Any, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        await store.get_response("t", "r")
    return (time.process_time() - t0) / n * 1e6


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stream = (Path(tmp) / "access.log").open("w")
        logs.configure("warning", "json", access=True, stream=stream)
        from responsa.store import open_store

        db_url = f"sqlite:///{tmp}/bench.db"
        store = open_store(db_url)
        await store.open()
        db = OpsDB(db_url)
        await db.open()
        gate = KeyGate(db, MemoryLimiter(), configured=[], admin=[])
        await gate.start()
        observed = ObservabilityMiddleware(app, routes={app: "/v1/responses"}, gate=gate)
        results: dict[str, list[float]] = {"bare": [], "observed": [], "raw events": [], "observed events": [],
                                           "raw store": [], "observed store": []}
        obs = context.Observation(request_id="req_bench", started=time.perf_counter(), tenant="t" * 32)
        context.bind(obs)
        for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both sides alike
            results["bare"].append(await per_request(app, args.requests))
            results["observed"].append(await per_request(observed, args.requests))
            results["raw events"].append(await per_stream(FakeProvider(args.events), None, args.requests // 10))
            results["observed events"].append(await per_stream(ObservedProvider(FakeProvider(args.events),  # type: ignore[arg-type]
                                                                                "chat-completions"),
                                                               observed_turn, args.requests // 10))
            results["raw store"].append(await per_store_call(Store(), args.requests))
            results["observed store"].append(await per_store_call(instrument_store(Store()), args.requests))  # type: ignore[arg-type]
        await gate.stop()
        await db.close()
        await store.close()
        stream.close()
        lines = (Path(tmp) / "access.log").read_text().count("\n")
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"access lines written: {lines}")
    print(f"per request (middleware, gate, metrics, JSON access line): {med['observed'] - med['bare']:.1f} us "
          f"({med['bare']:.1f} -> {med['observed']:.1f})")
    raw, seen = med["raw events"], med["observed events"]
    print(f"per streamed response of {args.events} events (provider wrapper + turn hook): "
          f"{seen - raw:.1f} us ({raw:.1f} -> {seen:.1f})")
    print(f"per store call: {med['observed store'] - med['raw store']:.2f} us")
    logging.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
