"""What Responsa adds on top of the upstream, measured as a difference in
one run: the same requests sent directly to a fake Chat Completions
upstream (separate process, 0 ms think time) and through Responsa (separate
process, SQLite store) to that same upstream.

    python benchmarks/overhead.py [--requests 400] [--concurrency 1 64]

Prints p50/p99 latency of each path, the added latency (through - direct)
and the ratio, for non-streamed and streamed requests. Streamed latency is
time to the last byte; "per event" divides the added time by the number of
events Responsa sent. The "chat" rows are the same requests through
``POST /v1/chat/completions`` (the Chat Completions front door: translation
both ways on top of the same engine). Both paths use the same client (httpx, keep-alive), so
client cost cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Re-exported: ab_overhead.py and instructions.py import them from here.
from _harness import PROMPT, ROOT, checkout_env, free_port, measure, pct, provider_config, start_responsa, stop, wait_up

__all__ = ["PROMPT", "free_port", "wait_up"]


async def run(args: argparse.Namespace, upstream: str, responsa: str) -> None:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        chat_body = {"model": "fake-model", "messages": [{"role": "user", "content": PROMPT}],
                     "stream": True, "stream_options": {"include_usage": True}}
        resp_body = {"model": "fake/fake-model", "input": PROMPT, "store": args.store}

        async def direct() -> int:
            async with http.stream("POST", f"{upstream}/v1/chat/completions", json=chat_body) as r:
                return len([1 async for line in r.aiter_lines() if line.startswith("data:")])

        async def through() -> int:
            r = await http.post(f"{responsa}/v1/responses", json=resp_body)
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
            return 1

        async def through_stream() -> int:
            async with http.stream("POST", f"{responsa}/v1/responses", json={**resp_body, "stream": True}) as r:
                assert r.status_code == 200
                return len([1 async for line in r.aiter_lines() if line.startswith("data: {")])

        door_body = {"model": "fake/fake-model", "messages": [{"role": "user", "content": PROMPT}],
                     "store": args.store}

        async def chat_door() -> int:
            r = await http.post(f"{responsa}/v1/chat/completions", json=door_body)
            assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "stop", r.text
            return 1

        async def chat_door_stream() -> int:
            async with http.stream("POST", f"{responsa}/v1/chat/completions",
                                   json={**door_body, "stream": True}) as r:
                assert r.status_code == 200
                return len([1 async for line in r.aiter_lines() if line.startswith("data: {")])

        modes = (("non-streamed", through), ("streamed (last byte)", through_stream),
                 ("chat non-streamed", chat_door), ("chat streamed (last)", chat_door_stream))
        for _name, call in (("direct", direct), ("through", through), ("stream", through_stream),
                            ("chat", chat_door), ("chat stream", chat_door_stream)):
            await measure(call, 50, 8)  # warm up connections, caches, the store
        print(f"{'mode':<24}{'conc':>5}{'direct p50':>12}{'resp p50':>10}{'added p50':>11}"
              f"{'direct p99':>12}{'resp p99':>10}{'added p99':>11}{'ratio':>7}{'per event':>11}")
        for concurrency in args.concurrency:
            base, _ = await measure(direct, args.requests, concurrency)
            for label, call in modes:
                lat, events = await measure(call, args.requests, concurrency)
                p50d, p50 = statistics.median(base), statistics.median(lat)
                p99d, p99 = pct(base, 0.99), pct(lat, 0.99)
                per_event = (p50 - p50d) / (events / args.requests) * 1000 if "streamed (" in label else 0
                print(f"{label:<24}{concurrency:>5}{p50d:>10.2f}ms{p50:>8.2f}ms{p50 - p50d:>9.2f}ms"
                      f"{p99d:>10.2f}ms{p99:>8.2f}ms{p99 - p99d:>9.2f}ms{p50 / p50d:>7.2f}"
                      f"{(f'{per_event:.0f}us' if per_event else '-'):>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--no-store", dest="store", action="store_false", help="send store=false")
    parser.add_argument("--server-log", help="append the server's log (its JSON access lines) to this file")
    args = parser.parse_args()
    up_port, rs_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = provider_config(Path(tmp) / "responsa.toml", up_port)
        upstream = subprocess.Popen([sys.executable, str(ROOT / "tests/fakes/openai_chat.py"), "--port",
                                     str(up_port)], env=checkout_env(), stderr=subprocess.DEVNULL)
        log = open(args.server_log, "ab") if args.server_log else None  # noqa: SIM115 (closed below)
        server = start_responsa(rs_port, config, f"sqlite:///{tmp}/bench.db", log=log)
        try:
            wait_up(f"http://127.0.0.1:{up_port}/v1/models", upstream)
            wait_up(f"http://127.0.0.1:{rs_port}/health", server)  # /health: also on checkouts before /healthz
            asyncio.run(run(args, f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{rs_port}"))
        finally:
            stop(server, upstream)
            if log is not None:
                log.close()

if __name__ == "__main__":
    main()
