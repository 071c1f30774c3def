"""One search over a tenant's vector stores: validate, embed the query,
run every leg in one database round trip, fuse (``ranking.py``), then read
the winning chunks and their files.

Filters (``filters.py``) are decided in Python on the searched stores'
completed files, before the legs run: each leg then only ranks the files a
filter keeps, so a selective filter never empties the top ``k`` the way
filtering after retrieval would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from responsa.protocol.errors import invalid, not_found
from responsa.store.vectors import Leg, query_terms
from responsa.vectorstores.filters import check_filter, keeps
from responsa.vectorstores.ranking import SearchMode, fuse, parse_ranking

if TYPE_CHECKING:
    from responsa.vectorstores.service import VectorStores

MAX_SEARCH_STORES = 10
MAX_QUERIES = 10
MAX_QUERY_CHARS = 4096
MAX_RESULTS = 50
LEG_MIN, LEG_MAX = 40, 200
"""Candidates each leg ranks: ``4 * max_num_results`` within these bounds."""


@dataclass(frozen=True, slots=True)
class Hit:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]
    vector_store_id: str
    chunk_index: int

    def as_result(self) -> dict[str, Any]:
        """OpenAI's ``VectorStoreSearchResponse``."""
        return {"file_id": self.file_id, "filename": self.filename, "score": self.score,
                "attributes": self.attributes, "content": [{"type": "text", "text": self.text}]}


def check_queries(query: Any) -> list[str]:
    queries = [query] if isinstance(query, str) else query
    if not isinstance(queries, list | tuple) or not queries or not all(isinstance(q, str) for q in queries):
        raise invalid("Invalid type for 'query': expected a string or an array of strings.", "query",
                      "invalid_type")
    if len(queries) > MAX_QUERIES:
        raise invalid(f"Invalid 'query': at most {MAX_QUERIES} query strings.", "query", "array_above_max_length")
    for q in queries:
        if not q.strip():
            raise invalid("Invalid 'query': a query must not be empty.", "query", "empty_string")
        if len(q) > MAX_QUERY_CHARS:
            raise invalid(f"Invalid 'query': at most {MAX_QUERY_CHARS} characters per query.", "query",
                          "string_above_max_length")
    return list(queries)


def check_max_results(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise invalid(f"Invalid 'max_num_results': expected an integer between 1 and {MAX_RESULTS}.",
                      "max_num_results")
    return value


async def run(vs: VectorStores, tenant: str, vector_store_ids: Sequence[str], query: Any, *,
              max_num_results: Any, filters: Any, ranking_options: Any, mode: SearchMode,
              rrf_k: int) -> list[Hit]:
    ids = list(dict.fromkeys(vector_store_ids))
    if not ids or len(ids) > MAX_SEARCH_STORES:
        raise invalid(f"Search between 1 and {MAX_SEARCH_STORES} vector stores at a time.", "vector_store_ids")
    queries = check_queries(query)
    limit = check_max_results(max_num_results)
    tree = None if filters is None else check_filter(filters)
    ranking = parse_ranking(ranking_options, mode, fusion=vs.fusion)
    now = int(time.time())
    stores = {row.id: row for row in await vs.db.get_stores(tenant, ids)}
    for vid in ids:
        row = stores.get(vid)
        if row is None:
            raise not_found(f"No vector store found with id '{vid}'.", "vector_store_id", "vector_store_not_found")
        after = row.body.get("expires_after")
        if after is not None and row.last_active_at + int(after["days"]) * 86_400 <= now:
            raise invalid(f"Vector store '{vid}' has expired.", "vector_store_id", "vector_store_expired")
    allowed: dict[str, list[str]] | None = None
    if tree is not None:
        allowed = {vid: [] for vid in ids}
        for vid, fid, _, attributes in await vs.db.searchable_files(tenant, ids):
            if keeps(tree, attributes):
                allowed[vid].append(fid)
    k = min(max(4 * limit, LEG_MIN), LEG_MAX)
    vectors: list[list[float]] = []
    if ranking.embedding_weight > 0:
        models = {stores[vid].embedding_model for vid in ids}
        if len(models) > 1:
            raise invalid("These vector stores were embedded with different models (" + ", ".join(sorted(models))
                          + "); search them one at a time.", "vector_store_ids")
        vectors = await vs.embedder(models.pop()).embed(queries)
    legs: list[Leg] = []
    lists: list[tuple[float, list[int]]] = []
    for qi, q in enumerate(queries):
        terms = query_terms(q) if ranking.text_weight > 0 else []
        kinds: list[tuple[float, list[Leg]]] = []
        if vectors:
            kinds.append((ranking.embedding_weight, [
                Leg(vid, k, None if allowed is None else allowed[vid], stores[vid].dimensions, vectors[qi])
                for vid in ids]))
        if ranking.text_weight > 0:
            kinds.append((ranking.text_weight, [Leg(vid, k, None if allowed is None else allowed[vid], terms=terms)
                                                for vid in ids]))
        for weight, group in kinds:
            legs += group
            lists.append((weight, []))
    results = await vs.db.run_legs(legs)
    # Each (query, leg kind) list merges its stores' results by their score
    # (the same measure within one kind), best first.
    per_list = len(ids)
    for n, (weight, _) in enumerate(list(lists)):
        merged = sorted((pair for r in results[n * per_list:(n + 1) * per_list] for pair in r),
                        key=lambda p: (-p[1], p[0]))
        lists[n] = (weight, [cid for cid, _ in merged[:k]])
    ranked = [(cid, score) for cid, score in fuse(lists, rrf_k) if score >= ranking.score_threshold][:limit]
    chunks = await vs.db.chunks([cid for cid, _ in ranked])
    info = await vs.db.file_info(tenant, sorted({(c.vector_store_id, c.file_id) for c in chunks.values()}))
    if any(stores[vid].last_active_at < now for vid in ids):  # at most one write per store and second
        await vs.db.touch_stores(tenant, ids, now)
    hits = []
    for cid, score in ranked:
        c = chunks.get(cid)
        if c is None or (c.vector_store_id, c.file_id) not in info:
            continue  # deleted between the legs and this read
        filename, attributes = info[(c.vector_store_id, c.file_id)]
        hits.append(Hit(c.file_id, filename, round(score, 6), c.text, attributes, c.vector_store_id, c.position))
    return hits
