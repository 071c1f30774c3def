"""The pure parts of vector stores: chunking windows, the filter evaluator,
rank fusion and the parameters' validation (400s naming the parameter)."""

from __future__ import annotations

from typing import Any

import pytest

from responsa.config import ConfigError, load_settings
from responsa.protocol.errors import ResponsaError
from responsa.tokenizer import encoding
from responsa.vectorstores.chunking import chunk, parse_strategy, static
from responsa.vectorstores.embedding import embed_chunks, pieces
from responsa.vectorstores.filters import check_attributes, check_filter, keeps
from responsa.vectorstores.ranking import Fusion, Ranking, fuse, parse_ranking
from tests.vectorstores.doubles import BagOfWords

ENC = encoding("cl100k_base")


def test_auto_is_openais_800_400() -> None:
    assert parse_strategy(None) == parse_strategy({"type": "auto"}) == static(800, 400)


def test_chunks_are_token_windows_with_the_overlap() -> None:
    assert ENC is not None
    text = " ".join(f"w{i}" for i in range(2000))
    tokens = ENC.encode(text)
    parts = chunk(text, static(300, 100))
    assert all(len(ENC.encode(p)) <= 300 for p in parts)
    assert parts[0] == ENC.decode(tokens[:300]) and parts[1] == ENC.decode(tokens[200:500])
    assert parts[-1].endswith("w1999")  # the last window ends at the end: nothing lost
    assert chunk("", static(100, 0)) == [] and chunk("   \n", static(100, 0)) == []


@pytest.mark.parametrize(("raw", "param"), [
    ({"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
     "chunking_strategy.static.max_chunk_size_tokens"),
    ({"type": "static", "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}},
     "chunking_strategy.static.max_chunk_size_tokens"),
    ({"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}},
     "chunking_strategy.static.chunk_overlap_tokens"),
    ({"type": "static", "static": {"max_chunk_size_tokens": 200}}, "chunking_strategy.static.chunk_overlap_tokens"),
    ({"type": "static"}, "chunking_strategy.static"),
    ({"type": "other"}, "chunking_strategy.type"),
    ({"type": "auto", "static": {}}, "chunking_strategy.static"),
    ("auto", "chunking_strategy"),
])
def test_bad_chunking_strategies(raw: Any, param: str) -> None:
    with pytest.raises(ResponsaError) as err:
        parse_strategy(raw)
    assert (err.value.status, err.value.param) == (400, param)


ATTRS = {"topic": "food", "year": 2021, "public": True, "score": 4.5}


@pytest.mark.parametrize(("flt", "kept"), [
    ({"type": "eq", "key": "year", "value": 2021.0}, True),
    ({"type": "eq", "key": "year", "value": "2021"}, False),
    ({"type": "eq", "key": "public", "value": 1}, False),  # a boolean is not a number
    ({"type": "ne", "key": "missing", "value": "x"}, True),
    ({"type": "gt", "key": "missing", "value": 1}, False),
    ({"type": "gt", "key": "topic", "value": "apple"}, True),  # strings compare with strings
    ({"type": "gt", "key": "topic", "value": 1}, False),
    ({"type": "lte", "key": "score", "value": 4.5}, True),
    ({"type": "in", "key": "year", "value": [2020, 2021]}, True),
    ({"type": "nin", "key": "missing", "value": ["a"]}, True),
    ({"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "x"},
                                {"type": "eq", "key": "public", "value": True}]}, True),
    ({"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "food"},
                                 {"type": "lt", "key": "year", "value": 2000}]}, False),
])
def test_filter_semantics(flt: dict[str, Any], kept: bool) -> None:
    assert keeps(check_filter(flt), ATTRS) is kept


@pytest.mark.parametrize(("flt", "param"), [
    ({"type": "eq", "key": "a", "value": {"x": 1}}, "filters.value"),
    ({"type": "in", "key": "a", "value": "notalist"}, "filters.value"),
    ({"type": "in", "key": "a", "value": [True]}, "filters.value"),
    ({"type": "eq", "value": 1}, "filters.key"),
    ({"type": "eq", "key": "a", "value": 1, "extra": 2}, "filters.extra"),
    ({"type": "and", "filters": []}, "filters.filters"),
    ({"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}, {"type": "xx"}]}, "filters.filters[1].type"),
])
def test_bad_filters(flt: dict[str, Any], param: str) -> None:
    with pytest.raises(ResponsaError) as err:
        check_filter(flt)
    assert err.value.param == param


def test_filters_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "eq", "key": "a", "value": 1}
    for _ in range(9):
        deep = {"type": "and", "filters": [deep]}
    with pytest.raises(ResponsaError):
        check_filter(deep)
    wide = {"type": "or", "filters": [{"type": "eq", "key": "a", "value": i} for i in range(65)]}
    with pytest.raises(ResponsaError):
        check_filter(wide)


def test_attributes_follow_openais_limits() -> None:
    assert check_attributes({"a": "x", "b": 1, "c": True, "d": 2.5}) == {"a": "x", "b": 1, "c": True, "d": 2.5}
    for bad in ({f"k{i}": 1 for i in range(17)}, {"k" * 65: 1}, {"a": "x" * 513}, {"a": None}, {"a": [1]}):
        with pytest.raises(ResponsaError):
            check_attributes(bad)


def test_fusion_rewards_agreement_and_normalises_to_one() -> None:
    fused = fuse([(1.0, [1, 2, 3]), (1.0, [2, 4])], 60)
    assert fused[0] == (2, pytest.approx((1 / 62 + 1 / 61) / (2 / 61)))
    assert [cid for cid, _ in fused] == [2, 1, 4, 3]
    assert fuse([(1.0, [7]), (1.0, [7])], 60) == [(7, 1.0)]
    assert fuse([(0.0, [1]), (1.0, [2])], 60) == [(2, 1.0)]  # a weight of 0 drops the leg
    # A heavier leg's first rank beats the other leg's; a small k makes the first ranks count more.
    assert [cid for cid, _ in fuse([(4.0, [1, 2]), (1.0, [2, 1])], 5)] == [1, 2]


def test_ranking_options() -> None:
    assert parse_ranking(None) == Ranking(4.0, 1.0)  # the server's default fusion
    assert parse_ranking(None, fusion=Fusion(10, 1.0, 2.0)) == Ranking(1.0, 2.0)
    assert parse_ranking({"hybrid_search": {"embedding_weight": 2, "text_weight": 0.5}}) == Ranking(2.0, 0.5)
    assert parse_ranking({"score_threshold": 0.5}) == Ranking(4.0, 1.0, 0.5)
    assert parse_ranking(None, "vector") == Ranking(4.0, 0.0)
    assert parse_ranking(None, "keyword") == Ranking(0.0, 1.0)
    assert parse_ranking({"ranker": "none", "score_threshold": 0.25}).score_threshold == 0.25
    with pytest.raises(ResponsaError) as err:
        parse_ranking({"hybrid_search": {"embedding_weight": 1}})
    assert err.value.param == "ranking_options.hybrid_search.text_weight"


def test_the_default_fusion_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONSA_VECTOR_STORE_RRF_K", "20")
    monkeypatch.setenv("RESPONSA_VECTOR_STORE_TEXT_WEIGHT", "0.5")
    s = load_settings(None)
    assert (s.vector_store_rrf_k, s.vector_store_embedding_weight, s.vector_store_text_weight) == (20, 4.0, 0.5)
    for bad in ((0, 1.0, 1.0), (5, -1.0, 1.0), (5, 0.0, 0.0)):
        with pytest.raises(ConfigError):
            Fusion(*bad)


class Windowed(BagOfWords):
    max_input_tokens = 40


async def test_long_chunks_are_embedded_whole() -> None:
    head = " ".join(["alpha"] * 50)
    tail = " ".join(["omega"] * 50)
    assert len(pieces(head + " " + tail, 40)) > 1
    model = Windowed()
    [vector] = await embed_chunks(model, [head + " " + tail])
    [alpha], [omega] = await model.embed(["alpha"]), await model.embed(["omega"])
    # The chunk's vector leans on its tail as much as on its head (truncation would ignore the tail).
    assert sum(a * b for a, b in zip(vector, omega, strict=True)) > 0.3
    assert sum(a * b for a, b in zip(vector, alpha, strict=True)) > 0.3
    assert abs(sum(x * x for x in vector) - 1) < 1e-9
