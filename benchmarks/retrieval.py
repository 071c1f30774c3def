"""Retrieval quality of Responsa's vector stores: recall@5 and nDCG@10 of
vector-only, keyword-only and hybrid search on a labelled public set.

    python benchmarks/retrieval.py [--tune] [--database-url postgresql://postgres@127.0.0.1:5432/test] [--json out.json]

The set (``retrieval_set.py``) is the Python 3.11 FAQ from Debian's
``python3.11-doc`` package: 173 questions whose relevant document is the
answer the CPython authors wrote under them, among 210 files (the answers
plus the tutorial and HOWTO pages as distractors).

Everything goes through Responsa's own code path, in this process: the app
(``create_app``, its lifespan) on a fresh SQLite (or the given PostgreSQL)
database, files uploaded with ``POST /v1/files``, one vector store made
from them by the app's ``VectorStores`` (``create`` and ``create_batch``,
what ``POST /v1/vector_stores`` and ``/file_batches`` call; default
chunking: 800-token chunks overlapping by 400, embedded with the default
local model by the background ingestion jobs), waited for until every file
is ``completed``. Every query then goes to
``VectorStores.search`` (the function behind ``POST
/v1/vector_stores/{id}/search`` and the ``file_search`` tool, called in
process so the benchmark can set its ``mode`` and ``rrf_k``) with
``max_num_results`` 50: ``mode`` vector, keyword, hybrid with the
server's default fusion (settings ``vector_store_rrf_k`` 5,
``vector_store_embedding_weight`` 4, ``vector_store_text_weight`` 1, picked
with ``--tune`` on the dev split of both databases), and hybrid with the
textbook RRF (k = 60, weights 1 : 1), the server's default before. The only thing changed for the benchmark is an
on-disk cache around the embedder (``~/.cache/responsa/retrieval/
embeddings.sqlite``), so a second run does not embed the corpus again; it
does not change a single vector.

Metrics are per file: a search's chunks are reduced to the files they come
from, in order of their best chunk. recall@5: the share of a query's
relevant files among the first 5 (each query has one, so it is the hit
rate); nDCG@10 with binary gains. Reported on the ``test`` split (109
queries) and on all 173. ``--tune`` also picks the fusion (RRF ``k`` and
``hybrid_search`` weights, ``GRID``) that does best on the ``dev`` split
(64 queries) by nDCG@10 and reports it on ``test``; its "all" column is
2-fold cross-validated (each half scored by the fusion the other half
picked), so no query is scored by a fusion chosen on it. One query is
0.9 points of recall@5 on ``test``: differences of a point or two are noise.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from retrieval_set import CACHE, Query, RetrievalSet, load  # noqa: E402
from retrieval_speed import with_search_path  # noqa: E402

from responsa.api.app import create_app  # noqa: E402
from responsa.config import load_settings  # noqa: E402

KEY = "retrieval-bench"
TENANT = hashlib.sha256(KEY.encode()).hexdigest()[:32]
"""The tenant the API key maps to (``api.auth.tenant_of``): the in-process searches are its."""
GRID = list(itertools.product((1, 5, 10, 20, 60), (0.5, 1.0, 2.0, 3.0, 4.0)))
"""``(rrf_k, embedding_weight)`` pairs ``--tune`` tries on the dev split (text_weight 1)."""


class CachedEmbedder:
    """The server's embedder with an on-disk cache of its vectors (keyed by
    model and text), so repeated runs skip embedding; misses are embedded
    by the wrapped embedder, unchanged."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner = inner
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, vec TEXT)")
        self.hits = self.misses = 0
        self.embed_s = 0.0

    @property
    def model(self) -> str:
        return str(self.inner.model)

    @property
    def dimensions(self) -> int | None:
        return self.inner.dimensions  # type: ignore[no-any-return]

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\0{text}".encode()).hexdigest()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [self._key(t) for t in texts]
        found = dict(self.db.execute(f"SELECT k, vec FROM v WHERE k IN ({','.join('?' * len(keys))})", keys))
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            t0 = time.perf_counter()
            vectors = await self.inner.embed([texts[i] for i in missing])
            self.embed_s += time.perf_counter() - t0
            rows = [(keys[i], json.dumps(v)) for i, v in zip(missing, vectors, strict=True)]
            self.db.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)", rows)
            self.db.commit()
            found.update(rows)
        return [json.loads(found[k]) for k in keys]


def files_ranked(hits: list[dict[str, Any]]) -> list[str]:
    """Filenames in order of their best chunk."""
    return list(dict.fromkeys(h["filename"] for h in hits))


def recall_at(ranked: list[str], relevant: frozenset[str], k: int) -> float:
    return len(relevant & set(ranked[:k])) / len(relevant)


def ndcg_at(ranked: list[str], relevant: frozenset[str], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, name in enumerate(ranked[:k]) if name in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def score(runs: dict[str, list[str]], queries: list[Query]) -> dict[str, float]:
    n = len(queries)
    return {"recall@5": round(sum(recall_at(runs[q.qid], q.relevant, 5) for q in queries) / n, 4),
            "ndcg@10": round(sum(ndcg_at(runs[q.qid], q.relevant, 10) for q in queries) / n, 4),
            "queries": n}


async def ingest(http: httpx.AsyncClient, vector_stores: Any, data: RetrievalSet) -> tuple[str, float]:
    """Upload every doc (``POST /v1/files``), make one vector store of them
    (``VectorStores.create`` + ``create_batch``: what the routes call), wait
    until each is ingested."""
    sem = asyncio.Semaphore(8)

    async def upload(name: str, text: str) -> str:
        async with sem:
            r = await http.post("/v1/files", data={"purpose": "assistants"},
                                files={"file": (name, text.encode(), "text/plain")})
            r.raise_for_status()
            return str(r.json()["id"])

    t0 = time.perf_counter()
    ids = await asyncio.gather(*(upload(d.name, d.text) for d in data.docs))
    store = await vector_stores.create(TENANT, {"name": "retrieval-benchmark"})
    for i in range(0, len(ids), 500):
        await vector_stores.create_batch(TENANT, store["id"], {"file_ids": ids[i:i + 500]})
    failed = [f for f in [await vector_stores.wait_file(TENANT, store["id"], fid) for fid in ids]
              if f["status"] != "completed"]
    if failed:
        raise SystemExit(f"ingestion failed: {failed[0]}")
    return store["id"], round(time.perf_counter() - t0, 1)


async def search_all(vector_stores: Any, vid: str, queries: list[Query], **how: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for q in queries:
        hits = await vector_stores.search(TENANT, [vid], q.text, max_num_results=50, **how)
        out[q.qid] = files_ranked([{"filename": h.filename} for h in hits])
    return out


async def vector_stores_of(app: Any) -> Any:
    """The app's ``VectorStores`` (started by its lifespan)."""
    return app.state.responsa.vector_stores


def _fusion(k: int, weight: float) -> dict[str, Any]:
    return {"rrf_k": k, "ranking_options": {"hybrid_search": {"embedding_weight": weight, "text_weight": 1.0}}}


async def tune(vector_stores: Any, vid: str, pick: list[Query], report: list[Query]) -> dict[str, Any]:
    """The fusion (``GRID``) with the best nDCG@10 (then recall@5) on ``pick``, scored on ``report``."""
    grid = [(k, w, score(await search_all(vector_stores, vid, pick, **_fusion(k, w)), pick)) for k, w in GRID]
    k, weight, _ = max(grid, key=lambda g: (g[2]["ndcg@10"], g[2]["recall@5"]))
    runs = await search_all(vector_stores, vid, report, **_fusion(k, weight))
    return {"rrf_k": k, "embedding_weight": weight, "text_weight": 1.0, "test": score(runs, report),
            "grid": [{"rrf_k": k, "embedding_weight": w, **s} for k, w, s in grid]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.database_url and args.database_url.startswith("postgres"):
        schema = f"responsa_retrieval_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(args.database_url)
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            return await run_on(args, with_search_path(args.database_url, schema))
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            await conn.close()
    return await run_on(args, args.database_url)


async def run_on(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    data = load()
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/retrieval.db"
        settings = load_settings(None, database_url=url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            vector_stores = await vector_stores_of(app)
            cache = CachedEmbedder(vector_stores.embedder(vector_stores.embedding_model),
                                   CACHE / "embeddings.sqlite")
            vector_stores.embedder_override = cache
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         headers={"authorization": f"Bearer {KEY}"}, timeout=600) as http:
                vid, ingest_s = await ingest(http, vector_stores, data)
                report: dict[str, Any] = {
                    "set": data.source, "docs": len(data.docs), "database": url.split(":")[0],
                    "embedding_model": cache.model, "ingest_s": ingest_s,
                    "embedded_now": cache.misses, "embedded_from_cache": cache.hits,
                    "modes": {}}
                t0 = time.perf_counter()
                test, dev = data.split("test"), data.split("dev")
                for mode in ("vector", "keyword", "hybrid"):
                    runs = await search_all(vector_stores, vid, data.queries, mode=mode)
                    report["modes"][mode] = {"test": score(runs, test), "all": score(runs, data.queries)}
                runs = await search_all(vector_stores, vid, data.queries, **_fusion(60, 1.0))
                report["modes"]["hybrid k=60 1:1"] = {"test": score(runs, test), "all": score(runs, data.queries)}
                if args.tune:
                    report["modes"]["hybrid_tuned"] = await tune(vector_stores, vid, dev, test)
                    # The same with the halves swapped: every query is then scored once by a fusion
                    # chosen without it (2-fold cross-validation over all 173 queries).
                    swapped = await tune(vector_stores, vid, test, dev)
                    cv = {}
                    for metric in ("recall@5", "ndcg@10"):
                        total = report["modes"]["hybrid_tuned"]["test"][metric] * len(test) + \
                            swapped["test"][metric] * len(dev)
                        cv[metric] = round(total / len(data.queries), 4)
                    report["modes"]["hybrid_tuned"]["all"] = {**cv, "queries": len(data.queries),
                                                              "picked_on_test": {k: swapped[k] for k in
                                                                                 ("rrf_k", "embedding_weight")}}
                report["search_s"] = round(time.perf_counter() - t0, 1)
                return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file; a PostgreSQL URL "
                        "(postgresql://postgres@127.0.0.1:5432/test) gets a fresh schema, dropped afterwards")
    parser.add_argument("--tune", action="store_true", help="pick hybrid weights on dev, report them on test")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(f"{report['set']}: {report['docs']} files, {report['database']}, {report['embedding_model']}, "
          f"ingest {report['ingest_s']} s ({report['embedded_now']} texts embedded now, "
          f"{report['embedded_from_cache']} from cache)")
    print(f"{'mode':<34}{'recall@5':>9}{'nDCG@10':>9}   (test split; all queries)")
    for mode, r in report["modes"].items():
        label = mode if "rrf_k" not in r else f"{mode} (k={r['rrf_k']}, weights {r['embedding_weight']:g}:1)"
        line = f"{label:<34}{r['test']['recall@5']:>9.3f}{r['test']['ndcg@10']:>9.3f}"
        if "all" in r:
            line += f"   ({r['all']['recall@5']:.3f}; {r['all']['ndcg@10']:.3f})"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
