"""Decode speed of the embedded model through Responsa versus xllamacpp
called directly, in one run, so the ratio is what Responsa costs (target:
through >= 90% of direct).

    python benchmarks/local_model.py [--tokens 128] [--rounds 5]

Both paths decode the same prompt greedily (temperature 0, so the same
tokens) with the same chat-completions body Responsa builds
(``responsa.providers.local.chat_body``) on a model loaded with the same
parameters. Direct: ``xllamacpp.Server.handle_chat_completions`` in this
process with a streaming callback. Through: ``responsa serve`` in a
subprocess (SQLite store), POST /v1/responses with stream=true over HTTP.
Speed = output tokens / wall time from sending the request to the last
token, so prompt handling, HTTP, SSE and the store all count against
Responsa. Rounds alternate between the paths (the machine's load hits both)
and the median of each is reported.

    python benchmarks/local_model.py --concurrency 1,2,4 [--parallel 1,4] [--threads 1]

Concurrent requests instead: for each llama.cpp slot count (``parallel``;
1 is how the provider ran before it had slots: one request at a time) a
server is started with that provider config, and for each concurrency C,
C streamed requests of --tokens tokens are sent at once, --rounds times.
Reported per C: aggregate output tokens/s (all tokens of a round / the
round's wall time) and p50 time to first token over all requests. The
1-minute load average is printed with each line: the numbers only compare
within one run on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from responsa.config import ProviderConfig  # noqa: E402
from responsa.providers.base import ModelRequest  # noqa: E402
from responsa.providers.local import LocalProvider, bundled_model_path, chat_body  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from overhead import free_port, wait_up  # noqa: E402

PROMPT = "Write a long story about a dragon who learns to fly."


def direct(server: Any, body: dict[str, Any]) -> tuple[int, float]:
    usage: dict[str, int] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        usage.update(chunk.get("usage") or {})
        return False

    t0 = time.perf_counter()
    server.handle_chat_completions(body, on_chunk)
    return usage["completion_tokens"], time.perf_counter() - t0


def through(http: httpx.Client, url: str, tokens: int) -> tuple[int, float]:
    body = {"model": "local/smollm2", "input": PROMPT, "temperature": 0, "max_output_tokens": tokens,
            "stream": True}
    t0 = time.perf_counter()
    last: dict[str, Any] = {}
    with http.stream("POST", f"{url}/v1/responses", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                last = json.loads(line[6:])
    elapsed = time.perf_counter() - t0
    assert last.get("type") in ("response.completed", "response.incomplete"), last
    return int(last["response"]["usage"]["output_tokens"]), elapsed


async def _one(http: httpx.AsyncClient, url: str, tokens: int) -> tuple[int, float]:
    """(output tokens, seconds to the first text delta) of one streamed request."""
    body = {"model": "local/smollm2", "input": PROMPT, "temperature": 0, "max_output_tokens": tokens,
            "stream": True}
    t0 = time.perf_counter()
    ttft: float | None = None
    last: dict[str, Any] = {}
    async with http.stream("POST", f"{url}/v1/responses", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                last = json.loads(line[6:])
                if ttft is None and last.get("type") == "response.output_text.delta":
                    ttft = time.perf_counter() - t0
    assert last.get("type") in ("response.completed", "response.incomplete") and ttft is not None, last
    return int(last["response"]["usage"]["output_tokens"]), ttft


async def _concurrent(url: str, levels: list[int], tokens: int, rounds: int) -> list[str]:
    lines = []
    async with httpx.AsyncClient(timeout=600) as http:
        await _one(http, url, 16)  # load the model
        for c in levels:
            rates, ttfts = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                results = await asyncio.gather(*(_one(http, url, tokens) for _ in range(c)))
                rates.append(sum(n for n, _ in results) / (time.perf_counter() - t0))
                ttfts += [t for _, t in results]
            lines.append(f"  concurrency {c}: {statistics.median(rates):6.1f} tokens/s aggregate, "
                         f"p50 TTFT {statistics.median(ttfts) * 1000:7.0f} ms   (load {os.getloadavg()[0]:.1f})")
    return lines


def concurrency(levels: list[int], slots: list[int], threads: int, tokens: int, rounds: int) -> None:
    for parallel in slots:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "b.toml"
            config.write_text(f'[providers.local]\nkind = "local"\nparallel = {parallel}\nthreads = {threads}\n')
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
            server = subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--port", str(port),
                                       "--config", str(config), "--model", "local/smollm2",
                                       "--database-url", f"sqlite:///{tmp}/b.db", "--log-level", "warning"], env=env)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_up(f"{url}/health", server)
                print(f"parallel={parallel} threads={threads} tokens={tokens} rounds={rounds}", flush=True)
                for line in asyncio.run(_concurrent(url, levels, tokens, rounds)):
                    print(line, flush=True)
            finally:
                server.terminate()
                server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", help="e.g. 1,2,4: measure concurrent requests instead")
    parser.add_argument("--parallel", default="1,4", help="llama.cpp slot counts to compare (with --concurrency)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (with --concurrency)")
    args = parser.parse_args()
    if args.concurrency:
        concurrency([int(c) for c in args.concurrency.split(",")], [int(p) for p in args.parallel.split(",")],
                    args.threads, args.tokens, args.rounds)
        return
    body = chat_body(ModelRequest(model="smollm2", temperature=0, max_output_tokens=args.tokens,
                                  items=[{"type": "message", "role": "user", "content": PROMPT}]))
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--port", str(port),
                                   "--model", "local/smollm2", "--database-url", f"sqlite:///{tmp}/b.db",
                                   "--log-level", "warning"], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_up(f"{url}/health", server)
            # The provider's own loader: identical llama.cpp parameters (threads, n_ctx), no Responsa.
            provider = LocalProvider(ProviderConfig(name="local", kind="local"))
            model = provider._server(str(bundled_model_path()), bundled=True).server
            with httpx.Client(timeout=120) as http:
                direct(model, body)  # warm up: load the models, fill the prompt caches
                through(http, url, args.tokens)
                rates: dict[str, list[float]] = {"direct": [], "through": []}
                for _ in range(args.rounds):
                    n, secs = direct(model, body)
                    rates["direct"].append(n / secs)
                    n, secs = through(http, url, args.tokens)
                    rates["through"].append(n / secs)
        finally:
            server.terminate()
            server.wait(10)
    d, t = statistics.median(rates["direct"]), statistics.median(rates["through"])
    print(f"prompt={PROMPT!r} max_tokens={args.tokens} rounds={args.rounds}")
    print(f"direct xllamacpp : {d:7.1f} tokens/s  (median; all: {' '.join(f'{r:.0f}' for r in rates['direct'])})")
    print(f"through Responsa : {t:7.1f} tokens/s  (median; all: {' '.join(f'{r:.0f}' for r in rates['through'])})")
    print(f"ratio            : {t / d:7.1%}  (target >= 90%)")


if __name__ == "__main__":
    main()
