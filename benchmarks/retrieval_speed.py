"""Ingestion and search speed of Responsa's vector stores at 10k and 100k
chunks, on SQLite and PostgreSQL.

    python benchmarks/retrieval_speed.py [--chunks 10000 100000] [--postgres URL] [--skip-sqlite] [--queries 200]
                                         [--json out.json]

Synthetic chunks (the cost of storing and searching does not depend on
what the words mean): 200 words each (~260 tokens: about what the local
embedding model reads of a chunk) drawn from a Zipf distribution over a
20,000-word vocabulary, with random unit vectors of the store's dimensions
(384, ``local/all-minilm-l6-v2``), seeded, so both databases get the same
data. Embedding is measured apart, because it dominates and does not depend
on the database:

- **embed**: the local embedding model on 64 such chunks (chunks/s), and
  on 200 short queries one at a time (p50 ms: what a search adds for it);
- **insert**: ``VectorStores.insert_chunks`` (the ingestion job's own last
  step: chunk rows, the vector index, the keyword index, the file marked
  completed) with the vectors given, 500 chunks per file (chunks/s over the
  whole load);
- **search**: ``VectorStores.search`` (the function behind
  ``/v1/vector_stores/{id}/search`` and the ``file_search`` tool) in
  hybrid, vector-only and keyword-only mode, ``max_num_results`` 10, with
  the query vectors precomputed (an embedder that looks them up), p50 and
  p99 over ``--queries`` queries of 4 words, one at a time after 10 warm-up
  queries; a query's full cost is the search plus the embed p50. Query
  words are content words (ranks 100-10,000, each in ~0.1-5 % of chunks):
  a word in nearly every chunk, like an English stop word, makes the
  keyword leg rank every chunk (SQLite keeps stop words in queries; at
  100k chunks that took the keyword leg to ~2 s p50 in a trial run);
- **vector recall@10**: of the vector-only searches, the share of the 10
  nearest chunks by brute force (numpy) they return: 1.0 while vector search
  is exact; what an approximate index would have to keep (random vectors
  are the hard case for one: their neighbours are barely nearer than the rest);
- the load average when each size finished (the machine may be shared).

SQLite: a fresh file in a temporary directory. PostgreSQL (``--postgres``,
e.g. ``postgresql://postgres@127.0.0.1:5432/test``): a fresh schema, dropped
afterwards. Each size gets its own store, so the 100k numbers are not
warmed by the 10k run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from responsa.api.app import create_app  # noqa: E402
from responsa.config import load_settings  # noqa: E402

TENANT = "speed-bench"
WORDS_PER_CHUNK = 200
CHUNKS_PER_FILE = 500
VOCAB = 20_000


class Corpus:
    """Seeded synthetic chunks, query strings and vectors."""

    def __init__(self, dims: int, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.dims = dims
        self.words = np.array([f"w{i}" for i in range(VOCAB)])

    def _ids(self, n: int) -> np.ndarray:
        return np.minimum(self.rng.zipf(1.2, n) - 1, VOCAB - 1)

    def texts(self, n: int, words: int = WORDS_PER_CHUNK) -> list[str]:
        ids = self._ids(n * words).reshape(n, words)
        return [" ".join(self.words[row]) for row in ids]

    def queries(self, n: int, words: int = 4) -> list[str]:
        """Content words: ranks 100-10,000 (a question's words once its stop words are gone)."""
        ids = self.rng.integers(100, 10_000, (n, words))
        return [" ".join(self.words[row]) for row in ids]

    def vectors(self, n: int) -> list[list[float]]:
        v = self.rng.standard_normal((n, self.dims)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.tolist()  # type: ignore[no-any-return]


class Lookup:
    """An embedder whose vectors were computed beforehand (the search's query vectors)."""

    def __init__(self, model: str, dims: int, table: dict[str, list[float]]) -> None:
        self.model, self.dimensions, self.table = model, dims, table

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def embed_speed(vector_stores: Any, corpus: Corpus, queries: int) -> dict[str, Any]:
    embedder = vector_stores.embedder(vector_stores.embedding_model)
    await embedder.embed(["warm up the model"])
    texts = corpus.texts(64)
    t0 = time.perf_counter()
    await embedder.embed(texts)
    chunk_rate = len(texts) / (time.perf_counter() - t0)
    lat = []
    for q in corpus.queries(queries):
        t1 = time.perf_counter()
        await embedder.embed([q])
        lat.append((time.perf_counter() - t1) * 1000)
    return {"model": embedder.model, "chunks_per_s": round(chunk_rate, 1),
            "query_p50_ms": round(statistics.median(lat), 2), "query_p99_ms": round(pct(lat, 0.99), 2)}


def exact_top(vectors: np.ndarray, query: list[float], k: int) -> set[int]:
    """Indexes of the ``k`` nearest of ``vectors`` (unit rows) by cosine, by brute force."""
    return set(np.argsort(-(vectors @ np.asarray(query, dtype=np.float32)))[:k].tolist())


async def one_size(vector_stores: Any, corpus: Corpus, n: int, queries: int) -> dict[str, Any]:
    store = await vector_stores.create(TENANT, {"name": f"speed-{n}"})
    vid = store["id"]
    texts, vectors = corpus.texts(n), corpus.vectors(n)
    t0 = time.perf_counter()
    for f, i in enumerate(range(0, n, CHUNKS_PER_FILE)):
        await vector_stores.insert_chunks(TENANT, vid, f"file-speed{n}-{f:05d}", texts[i:i + CHUNKS_PER_FILE],
                                          vectors[i:i + CHUNKS_PER_FILE])
    insert_s = time.perf_counter() - t0
    qtexts = corpus.queries(queries + 10)
    qvectors = dict(zip(qtexts, corpus.vectors(len(qtexts)), strict=True))
    real = vector_stores.embedder_override
    vector_stores.embedder_override = Lookup(vector_stores.embedding_model, corpus.dims, qvectors)
    out: dict[str, Any] = {"chunks": n, "insert_s": round(insert_s, 2), "insert_chunks_per_s": round(n / insert_s, 1)}
    matrix = np.asarray(vectors, dtype=np.float32)
    found = 0
    try:
        for mode in ("hybrid", "vector", "keyword"):
            lat = []
            for j, q in enumerate(qtexts):
                t1 = time.perf_counter()
                hits = await vector_stores.search(TENANT, [vid], q, max_num_results=10, mode=mode)
                if j >= 10:
                    lat.append((time.perf_counter() - t1) * 1000)
                assert mode == "keyword" or hits, "a vector search always finds chunks"
                if mode == "vector" and j >= 10:
                    got = {int(h.file_id.rsplit("-", 1)[1]) * CHUNKS_PER_FILE + h.chunk_index for h in hits}
                    found += len(got & exact_top(matrix, qvectors[q], 10))
            out[mode] = {"p50_ms": round(statistics.median(lat), 2), "p99_ms": round(pct(lat, 0.99), 2)}
        out["vector_recall_at_10"] = round(found / (10 * queries), 4)
        out["load_average"] = round(os.getloadavg()[0], 1)
    finally:
        vector_stores.embedder_override = real
    return out


async def vector_stores_of(app: Any) -> Any:
    """The app's ``VectorStores`` (started by its lifespan)."""
    return app.state.responsa.vector_stores


async def run_db(url: str, sizes: list[int], queries: int, with_embed: bool) -> dict[str, Any]:
    app = create_app(load_settings(None, database_url=url))
    async with app.router.lifespan_context(app):
        vector_stores = await vector_stores_of(app)
        corpus = Corpus(vector_stores.embedder(vector_stores.embedding_model).dimensions or 384)
        result: dict[str, Any] = {"database": url.split(":")[0], "sizes": []}
        if with_embed:
            result["embed"] = await embed_speed(vector_stores, corpus, queries)
        for n in sizes:
            result["sizes"].append(await one_size(vector_stores, corpus, n, queries))
            print(json.dumps(result["sizes"][-1]), flush=True)
        return result


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public', safe='')}"


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(await run_db(f"sqlite:///{tmp}/speed.db", args.chunks, args.queries, with_embed=True))
    if args.postgres:
        schema = f"responsa_speed_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(args.postgres)
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            results.append(await run_db(with_search_path(args.postgres, schema), args.chunks, args.queries,
                                        with_embed=False))
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--postgres", help="a PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-sqlite", action="store_true", help="only the --postgres run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if "embed" in results[0]:
        embed = results[0]["embed"]
        print(f"embedding ({embed['model']}): {embed['chunks_per_s']} chunks/s of {WORDS_PER_CHUNK} words; "
              f"one query {embed['query_p50_ms']} ms p50")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'db':<11}{'chunks':>8}{'insert/s':>10}{'hybrid p50/p99':>18}{'vector p50/p99':>18}"
          f"{'keyword p50/p99':>18}{'vector recall@10':>18}")
    for r in results:
        for s in r["sizes"]:
            cells = "".join(f"{s[m]['p50_ms']:>9.1f}/{s[m]['p99_ms']:<6.1f}ms" for m in ("hybrid", "vector", "keyword"))
            print(f"{r['database']:<11}{s['chunks']:>8}{s['insert_chunks_per_s']:>10.0f}{cells}"
                  f"{s['vector_recall_at_10']:>18.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
