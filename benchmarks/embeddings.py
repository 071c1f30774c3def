"""Embedding throughput of ``local/all-minilm-l6-v2``: embeddings per second
for 1 and for 32 short texts per call, in-process (``Embedder.embed``, the
direct call vector stores make) and through ``POST /v1/embeddings`` (the
``openai`` SDK against a Responsa server in this process), alternating, so
the ratio HTTP / direct is measured on the same machine at the same instant.

    python benchmarks/embeddings.py [--rounds 30]

Prints the median calls/s and embeddings/s of each, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from openai import AsyncOpenAI  # noqa: E402

from responsa.config import load_settings  # noqa: E402
from responsa.embeddings.local import minilm  # noqa: E402
from tests.helpers import serve_responsa  # noqa: E402

MODEL = "local/all-minilm-l6-v2"
TEXTS = [f"Short passage number {i} about {topic}." for i, topic in enumerate(
    ["vector stores", "password resets", "stock markets", "cooking pasta", "the weather in Paris", "GPUs",
     "football", "tax forms"] * 4)]


async def run(url: str, rounds: int) -> None:
    embedder = minilm()
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=120)
    await embedder.embed(TEXTS)  # load the model (excluded)
    await client.embeddings.create(model=MODEL, input=TEXTS)
    print(f"load average {os.getloadavg()[0]:.1f} (other work on the machine makes these approximate)")
    for n in (1, 32):
        texts = TEXTS[:n]
        direct, http = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await embedder.embed(texts)
            t1 = time.perf_counter()
            await client.embeddings.create(model=MODEL, input=texts)
            t2 = time.perf_counter()
            direct.append(t1 - t0)
            http.append(t2 - t1)
        d, h = statistics.median(direct), statistics.median(http)
        print(f"{n:2d} text(s)/call: direct {1 / d:7.1f} calls/s = {n / d:7.1f} embeddings/s ({d * 1e3:6.1f} ms);"
              f"  HTTP {n / h:7.1f} embeddings/s ({h * 1e3:6.1f} ms);  HTTP/direct time {h / d:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, database_url=f"sqlite:///{tmp}/bench.db", default_model="test/echo")
        with serve_responsa(settings) as url:
            asyncio.run(run(url, args.rounds))


if __name__ == "__main__":
    main()
