"""How a search's ranked lists become one ranking: weighted reciprocal rank
fusion, and the ``ranking_options`` that tune it.

Each query string gives one list per leg (vectors, keywords). A chunk's
score is ``sum(weight_leg / (rrf_k + rank))`` over the lists it appears in
(rank 1 = best), divided by the score of a chunk ranked first in every list
(``sum(weight) / (rrf_k + 1)``): 1.0 is "best by every measure", and
``score_threshold`` (0..1) compares against that. RRF needs no calibration
between a cosine similarity and a bm25 or ts_rank score, which is why the
two databases, whose keyword scores differ in scale, rank alike.

``ranking_options.hybrid_search`` (``embedding_weight``, ``text_weight``,
as OpenAI's file_search tool takes them) weighs the legs; a weight of 0
leaves that leg out (vector-only, keyword-only). Without it, the server's
``Fusion`` (settings ``vector_store_rrf_k``, ``vector_store_embedding_weight``,
``vector_store_text_weight``) applies: k = 5 and 4 : 1, picked on the dev
split of ``benchmarks/retrieval.py``, where the textbook k = 60 and 1 : 1
ranked worse than vectors alone. A score-based fusion (a convex
combination of min-max normalised leg scores) was measured too: 1-2 points
more nDCG@10 but a query or two less recall@5 on PostgreSQL, so no clear
win over RRF, which OpenAI documents for these weights. ``ranker`` accepts
OpenAI's values; there is no separate re-ranking model to pick, so they
rank alike (documented in the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from responsa.config import ConfigError, Settings
from responsa.protocol.errors import invalid

SearchMode = Literal["hybrid", "vector", "keyword"]
RANKERS = ("auto", "default-2024-11-15", "none")


@dataclass(frozen=True, slots=True)
class Fusion:
    """The server's default fusion (see the module docstring and ``config.py``)."""

    rrf_k: int
    embedding_weight: float
    text_weight: float

    def __post_init__(self) -> None:
        if self.rrf_k < 1 or self.embedding_weight < 0 or self.text_weight < 0 or \
                self.embedding_weight + self.text_weight <= 0:
            raise ConfigError("vector_store_rrf_k must be at least 1 and the vector store weights at least 0, "
                             "one of them above 0.")


_SET: dict[str, Any] = {f.name: f.default for f in fields(Settings)}
DEFAULT_FUSION = Fusion(_SET["vector_store_rrf_k"], _SET["vector_store_embedding_weight"],
                        _SET["vector_store_text_weight"])
"""The settings' defaults (one place for the numbers: ``config.py``)."""


@dataclass(frozen=True, slots=True)
class Ranking:
    embedding_weight: float = 1.0
    text_weight: float = 1.0
    score_threshold: float = 0.0
    ranker: str = "auto"


def parse_ranking(raw: Any, mode: SearchMode = "hybrid", param: str = "ranking_options",
                  fusion: Fusion = DEFAULT_FUSION) -> Ranking:
    """``ranking_options`` validated (a 400 naming the key), with ``mode``
    applied; weights it does not set are ``fusion``'s."""
    opts = Ranking(fusion.embedding_weight, fusion.text_weight)
    if raw is not None:
        if not isinstance(raw, dict):
            raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
        extra = sorted(set(raw) - {"ranker", "score_threshold", "hybrid_search"})
        if extra:
            raise invalid(f"Unknown parameter: '{param}.{extra[0]}'.", f"{param}.{extra[0]}", "unknown_parameter")
        ranker = raw.get("ranker", "auto")
        if ranker not in RANKERS:
            raise invalid(f"Invalid value for '{param}.ranker': {ranker!r}. Supported values are: "
                          + ", ".join(repr(r) for r in RANKERS) + ".", f"{param}.ranker")
        threshold = raw.get("score_threshold", 0.0)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise invalid(f"Invalid '{param}.score_threshold': expected a number between 0 and 1.",
                          f"{param}.score_threshold")
        weights = (fusion.embedding_weight, fusion.text_weight)
        hybrid = raw.get("hybrid_search")
        if hybrid is not None:
            weights = _weights(hybrid, f"{param}.hybrid_search")
        opts = Ranking(weights[0], weights[1], float(threshold), ranker)
    if mode == "vector":
        return Ranking(opts.embedding_weight or 1.0, 0.0, opts.score_threshold, opts.ranker)
    if mode == "keyword":
        return Ranking(0.0, opts.text_weight or 1.0, opts.score_threshold, opts.ranker)
    return opts


def _weights(raw: Any, param: str) -> tuple[float, float]:
    if not isinstance(raw, dict):
        raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    extra = sorted(set(raw) - {"embedding_weight", "text_weight"})
    if extra:
        raise invalid(f"Unknown parameter: '{param}.{extra[0]}'.", f"{param}.{extra[0]}", "unknown_parameter")
    out = []
    for key in ("embedding_weight", "text_weight"):
        if key not in raw:
            raise invalid(f"Missing required parameter: '{param}.{key}'.", f"{param}.{key}",
                          "missing_required_parameter")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
            raise invalid(f"Invalid '{param}.{key}': expected a number of at least 0.", f"{param}.{key}")
        out.append(float(value))
    if out[0] == 0 and out[1] == 0:
        raise invalid(f"Invalid '{param}': at least one of embedding_weight and text_weight must be above 0.",
                      param)
    return out[0], out[1]


def fuse(lists: Sequence[tuple[float, Sequence[int]]], rrf_k: int) -> list[tuple[int, float]]:
    """``(weight, chunk ids best first)`` lists -> ``(chunk id, score 0..1)``,
    best first (ties: lower chunk id, i.e. ingested earlier, first)."""
    scores: dict[int, float] = {}
    best = 0.0
    for weight, ids in lists:
        if weight <= 0:
            continue
        best += weight / (rrf_k + 1)
        for rank, cid in enumerate(ids, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (rrf_k + rank)
    if best == 0:
        return []
    return sorted(((cid, s / best) for cid, s in scores.items()), key=lambda p: (-p[1], p[0]))
