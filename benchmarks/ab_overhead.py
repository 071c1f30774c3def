"""Two checkouts of Responsa side by side, requests alternating between
them, so both see the same machine at the same instant: the way to compare
a change's cost on a busy, shared machine (``overhead.py`` measures one
checkout against the upstream; run back to back, two of its runs differ by
more than what a small change costs when other work shares the cores).

    python benchmarks/ab_overhead.py BEFORE_CHECKOUT AFTER_CHECKOUT [--requests 2000] [--stream]

Each checkout's server (its own ``src/``, SQLite store, default settings:
in the newer one, metrics and the JSON access log on, written to a file)
proxies the same fake Chat Completions upstream. Prints p50 of each and
the median of the per-pair differences (after - before).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PROMPT, checkout_env, free_port, provider_config, start_responsa, stop, wait_up


async def run(args: argparse.Namespace, before: str, after: str) -> None:
    body = {"model": "fake/fake-model", "input": PROMPT, "stream": args.stream}
    async with httpx.AsyncClient(timeout=60) as http:
        async def one(url: str) -> float:
            t0 = time.perf_counter()
            if args.stream:
                async with http.stream("POST", f"{url}/v1/responses", json=body) as r:
                    async for _ in r.aiter_bytes():
                        pass
            else:
                r = await http.post(f"{url}/v1/responses", json=body)
                assert r.status_code == 200, r.text
            return (time.perf_counter() - t0) * 1e6

        for _ in range(100):
            await one(before)
            await one(after)
        pairs = []
        for i in range(args.requests):
            if i % 2:  # alternate which goes first
                b, a = await one(before), await one(after)
            else:
                a, b = await one(after), await one(before)
            pairs.append((b, a))
    bs, as_ = [p[0] for p in pairs], [p[1] for p in pairs]
    diffs = [a - b for b, a in pairs]
    print(f"{'streamed' if args.stream else 'non-streamed'}: {args.requests} pairs, load {os.getloadavg()[0]:.1f}")
    print(f"  before p50 {statistics.median(bs):8.0f} us   after p50 {statistics.median(as_):8.0f} us")
    print(f"  median paired difference (after - before): {statistics.median(diffs):+.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    up_port = free_port()
    root = Path(args.after).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        config = provider_config(Path(tmp) / "responsa.toml", up_port)
        procs = [subprocess.Popen([sys.executable, str(root / "tests/fakes/openai_chat.py"), "--port", str(up_port)],
                                  env=checkout_env(root), stderr=subprocess.DEVNULL)]
        urls = []
        try:
            for name, checkout in (("before", args.before), ("after", args.after)):
                port = free_port()
                src = Path(checkout).resolve()
                log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the server)
                procs.append(start_responsa(port, config, f"sqlite:///{tmp}/{name}.db", root=src, log=log))
                urls.append(f"http://127.0.0.1:{port}")
            wait_up(f"http://127.0.0.1:{up_port}/v1/models", procs[0])
            for url, proc in zip(urls, procs[1:], strict=True):
                wait_up(f"{url}/health", proc)
            asyncio.run(run(args, urls[0], urls[1]))
            lines = (Path(tmp) / "after.log").read_text().count('"logger":"responsa.access"')
            print(f"  access lines written by the after server: {lines}")
        finally:
            stop(*procs)


if __name__ == "__main__":
    main()
