"""The vector-store search contract, run unchanged on SQLite (FTS5 +
sqlite-vec) and PostgreSQL (tsvector + pgvector): the same calls give the
same answers on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from responsa.protocol.errors import ResponsaError
from responsa.store import Store
from responsa.vectorstores import VectorStores
from tests.vectorstores.doubles import BagOfWords, MemoryFiles

T1, T2 = "tenant-one", "tenant-two"

DOCS = {
    "file-cats": ("cats.txt", "Cats are small carnivorous mammals. A cat sleeps most of the day and purrs."),
    "file-rockets": ("rockets.md", "Rockets burn liquid hydrogen and oxygen to reach orbit around the earth."),
    "file-bread": ("bread.txt", "Bread is baked from flour, water, salt and yeast; sourdough uses a starter."),
    "file-tea": ("tea.txt", "Green tea and black tea come from the same plant, Camellia sinensis."),
}
ATTRS: dict[str, dict[str, Any]] = {
    "file-cats": {"topic": "animals", "year": 2020, "public": True},
    "file-rockets": {"topic": "space", "year": 2023, "public": False},
    "file-bread": {"topic": "food", "year": 2021, "public": True},
    "file-tea": {"topic": "food", "year": 2024},
}


@pytest.fixture
async def vs(store: Store) -> AsyncIterator[VectorStores]:
    files = MemoryFiles()
    for tenant in (T1, T2):
        for fid, (name, text) in DOCS.items():
            files.add(tenant, fid, name, text)
    embedder = BagOfWords()
    service = VectorStores(store, embedder_for=lambda model: embedder, files=files,
                           embedding_model="test/bag-of-words", lease_s=5.0)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def filled(vs: VectorStores, tenant: str = T1) -> str:
    created = await vs.create(tenant, {"name": "docs"})
    for fid in DOCS:
        await vs.add_file(tenant, created["id"], fid, attributes=ATTRS[fid])
    for fid in DOCS:
        done = await vs.wait_file(tenant, created["id"], fid)
        assert done["status"] == "completed", done
    return str(created["id"])


async def test_store_object_counts_files_and_bytes(vs: VectorStores) -> None:
    vid = await filled(vs)
    got = await vs.retrieve(T1, vid)
    assert got["object"] == "vector_store" and got["name"] == "docs"
    assert got["file_counts"] == {"in_progress": 0, "completed": 4, "failed": 0, "cancelled": 0, "total": 4}
    assert got["status"] == "completed"
    assert got["usage_bytes"] > sum(len(t) for _, t in DOCS.values())


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
async def test_every_mode_finds_the_matching_file_first(vs: VectorStores, mode: str) -> None:
    vid = await filled(vs)
    hits = await vs.search(T1, [vid], "how do rockets reach orbit", mode=mode)  # type: ignore[arg-type]
    assert hits[0].file_id == "file-rockets"
    assert hits[0].filename == "rockets.md"
    assert "hydrogen" in hits[0].text
    assert hits[0].attributes == ATTRS["file-rockets"]
    assert all(0 < h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_hybrid_ranks_a_chunk_first_in_both_legs_at_score_one(vs: VectorStores) -> None:
    vid = await filled(vs)
    hits = await vs.search(T1, [vid], "sourdough bread yeast flour")
    assert hits[0].file_id == "file-bread" and hits[0].score == 1.0


@pytest.mark.parametrize(("flt", "expected"), [
    ({"type": "eq", "key": "topic", "value": "food"}, {"file-bread", "file-tea"}),
    ({"type": "ne", "key": "topic", "value": "food"}, {"file-cats", "file-rockets"}),
    ({"type": "gt", "key": "year", "value": 2021}, {"file-rockets", "file-tea"}),
    ({"type": "gte", "key": "year", "value": 2021}, {"file-rockets", "file-tea", "file-bread"}),
    ({"type": "lt", "key": "year", "value": 2021}, {"file-cats"}),
    ({"type": "lte", "key": "year", "value": 2021.0}, {"file-cats", "file-bread"}),
    ({"type": "in", "key": "topic", "value": ["space", "animals"]}, {"file-cats", "file-rockets"}),
    ({"type": "nin", "key": "topic", "value": ["space", "animals"]}, {"file-bread", "file-tea"}),
    ({"type": "eq", "key": "public", "value": True}, {"file-cats", "file-bread"}),
    ({"type": "ne", "key": "public", "value": True}, {"file-rockets", "file-tea"}),  # missing counts as "not equal"
    ({"type": "eq", "key": "year", "value": "2020"}, set()),  # a string never equals a number
    ({"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "food"},
                                 {"type": "gte", "key": "year", "value": 2024}]}, {"file-tea"}),
    ({"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "space"},
                                {"type": "and", "filters": [{"type": "eq", "key": "public", "value": True},
                                                            {"type": "lt", "key": "year", "value": 2021}]}]},
     {"file-rockets", "file-cats"}),
])
async def test_filters_keep_exactly_the_matching_files(vs: VectorStores, flt: dict[str, Any],
                                                       expected: set[str]) -> None:
    vid = await filled(vs)
    # A query every document shares words with, so only the filter decides.
    hits = await vs.search(T1, [vid], "the cats rockets bread tea and of from", filters=flt, max_num_results=50)
    assert {h.file_id for h in hits} == expected


async def test_max_num_results_and_score_threshold(vs: VectorStores) -> None:
    vid = await filled(vs)
    assert len(await vs.search(T1, [vid], "the and of", max_num_results=2)) <= 2
    hits = await vs.search(T1, [vid], "rockets orbit", ranking_options={"score_threshold": 0.9})
    assert [h.file_id for h in hits] == ["file-rockets"]


async def test_weights_of_zero_drop_a_leg(vs: VectorStores) -> None:
    vid = await filled(vs)
    keyword = await vs.search(T1, [vid], "zzzunknownword", ranking_options={
        "hybrid_search": {"embedding_weight": 0, "text_weight": 1}})
    assert keyword == []  # no chunk has the word: the keyword leg alone finds nothing
    vector = await vs.search(T1, [vid], "zzzunknownword", mode="vector")
    assert len(vector) == 4  # nearest neighbours always exist


async def test_attributes_update_changes_what_filters_keep(vs: VectorStores) -> None:
    vid = await filled(vs)
    flt = {"type": "eq", "key": "topic", "value": "space"}
    updated = await vs.update_file(T1, vid, "file-cats", {"topic": "space"})
    assert updated["attributes"] == {"topic": "space"}
    hits = await vs.search(T1, [vid], "cats rockets", filters=flt)
    assert {h.file_id for h in hits} == {"file-cats", "file-rockets"}


async def test_deleting_a_file_removes_its_chunks_from_both_legs(vs: VectorStores) -> None:
    vid = await filled(vs)
    await vs.delete_file(T1, vid, "file-rockets")
    for mode in ("vector", "keyword"):
        hits = await vs.search(T1, [vid], "rockets hydrogen orbit", mode=mode)  # type: ignore[arg-type]
        assert "file-rockets" not in {h.file_id for h in hits}
    assert (await vs.retrieve(T1, vid))["file_counts"]["total"] == 3
    with pytest.raises(ResponsaError) as err:
        await vs.get_file(T1, vid, "file-rockets")
    assert err.value.status == 404


async def test_the_sweeper_deletes_expired_stores_with_their_chunks_and_files(vs: VectorStores) -> None:
    """A store past ``expires_at`` is deleted by the ingestion sweeper (what
    every replica runs every ``lease_s / 2``), here swept as of two days on."""
    day_one = await filled(vs)
    await vs.update(T1, day_one, {"expires_after": {"anchor": "last_active_at", "days": 1}})
    week = (await vs.create(T1, {"expires_after": {"anchor": "last_active_at", "days": 7}}))["id"]
    forever = await filled(vs, T2)
    await vs.search(T1, [day_one], "rockets")  # a search keeps a store alive: expires_at moves with it
    expires = (await vs.retrieve(T1, day_one))["expires_at"]
    await vs.ingestor.sweep(now=expires - 1)
    assert (await vs.retrieve(T1, day_one))["status"] == "completed"
    await vs.ingestor.sweep(now=expires + 86_400)
    with pytest.raises(ResponsaError) as err:
        await vs.retrieve(T1, day_one)
    assert err.value.status == 404
    with pytest.raises(ResponsaError) as err:
        await vs.search(T1, [day_one], "rockets")
    assert err.value.status == 404

    async def left(table: str) -> int:
        return int(await vs.db.driver.read(lambda db: db.fetchval(
            f"SELECT COUNT(*) FROM {table} WHERE vector_store_id = ?", day_one)))

    assert await left("vector_store_files") == 0 and await left("vector_store_chunks") == 0
    assert (await vs.retrieve(T1, week))["status"] == "completed"  # not yet expired
    assert (await vs.search(T2, [forever], "rockets"))[0].file_id == "file-rockets"  # never expires


async def test_file_content_is_its_chunks_in_order(vs: VectorStores) -> None:
    vid = await vs.create(T1, {})
    long_text = " ".join(f"word{i}" for i in range(1000))
    vs.files.add(T1, "file-long", "long.txt", long_text)  # type: ignore[union-attr]
    await vs.add_file(T1, vid["id"], "file-long", chunking_strategy={
        "type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}})
    done = await vs.wait_file(T1, vid["id"], "file-long")
    assert done["chunking_strategy"] == {"type": "static", "static": {"max_chunk_size_tokens": 200,
                                                                      "chunk_overlap_tokens": 50}}
    parts = await vs.file_content(T1, vid["id"], "file-long")
    assert len(parts) > 5
    assert parts[0]["text"].startswith("word0 ") and parts[-1]["text"].endswith("word999")


async def test_tenants_never_see_each_others_stores(vs: VectorStores) -> None:
    vid = await filled(vs, T1)
    for call in (vs.retrieve(T2, vid), vs.search(T2, [vid], "cats"), vs.get_file(T2, vid, "file-cats"),
                 vs.delete(T2, vid), vs.add_file(T2, vid, "file-cats")):
        with pytest.raises(ResponsaError) as err:
            await call
        assert err.value.status == 404
    listed, _ = await vs.list_stores(T2, after=None, before=None, limit=20, order="desc")
    assert listed == []
    assert (await vs.retrieve(T1, vid))["file_counts"]["completed"] == 4


async def test_list_pages_with_cursors(vs: VectorStores) -> None:
    ids = [(await vs.create(T1, {"name": f"s{i}"}))["id"] for i in range(5)]
    page, more = await vs.list_stores(T1, after=None, before=None, limit=2, order="asc")
    assert [p["id"] for p in page] == ids[:2] and more
    page, more = await vs.list_stores(T1, after=ids[1], before=None, limit=10, order="asc")
    assert [p["id"] for p in page] == ids[2:] and not more
    page, more = await vs.list_stores(T1, after=None, before=ids[2], limit=10, order="desc")
    assert [p["id"] for p in page] == [ids[4], ids[3]]  # newest first, up to the cursor
    with pytest.raises(ResponsaError) as err:
        await vs.list_stores(T1, after="vs_nope", before=None, limit=10, order="asc")
    assert err.value.status == 400 and err.value.param == "after"


async def test_unreadable_file_fails_with_last_error(vs: VectorStores) -> None:
    vid = (await vs.create(T1, {}))["id"]
    vs.files.add(T1, "file-bin", "blob.bin", "\x00\x01")  # type: ignore[union-attr]
    await vs.add_file(T1, vid, "file-bin")
    done = await vs.wait_file(T1, vid, "file-bin")
    assert done["status"] == "failed"
    assert done["last_error"]["code"] == "unsupported_file"
    assert (await vs.retrieve(T1, vid))["file_counts"]["failed"] == 1


async def test_cancelled_batch_leaves_no_chunks(vs: VectorStores) -> None:
    vid = (await vs.create(T1, {}))["id"]
    batch = await vs.create_batch(T1, vid, {"file_ids": list(DOCS)})
    cancelled = await vs.cancel_batch(T1, vid, batch["id"])
    assert cancelled["object"] == "vector_store.files_batch"
    for fid in DOCS:
        await vs.wait_file(T1, vid, fid)
    after = await vs.get_batch(T1, vid, batch["id"])
    assert after["status"] in ("cancelled", "completed")
    counts = after["file_counts"]
    assert counts["in_progress"] == 0 and counts["cancelled"] + counts["completed"] == 4
    hits = await vs.search(T1, [vid], "cats rockets bread tea", max_num_results=50)
    completed = {f["id"] for f in (await vs.list_files(T1, vid, after=None, before=None, limit=100, order="asc",
                                                        status="completed"))[0]}
    assert {h.file_id for h in hits} <= completed


async def test_bad_parameters_are_400s_naming_them(vs: VectorStores) -> None:
    vid = await filled(vs)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"max_num_results": 0}, "max_num_results"),
        ({"max_num_results": 51}, "max_num_results"),
        ({"filters": {"type": "like", "key": "a", "value": 1}}, "filters.type"),
        ({"filters": {"type": "and", "filters": [{"type": "eq", "key": "a"}]}}, "filters.filters[0].value"),
        ({"ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
        ({"ranking_options": {"score_threshold": 2}}, "ranking_options.score_threshold"),
        ({"ranking_options": {"hybrid_search": {"embedding_weight": 0, "text_weight": 0}}},
         "ranking_options.hybrid_search"),
    ]
    for kwargs, param in cases:
        with pytest.raises(ResponsaError) as err:
            await vs.search(T1, [vid], "cats", **kwargs)
        assert (err.value.status, err.value.param) == (400, param), kwargs
    with pytest.raises(ResponsaError) as err:
        await vs.search(T1, [vid], "x" * 5000)
    assert err.value.param == "query"
    with pytest.raises(ResponsaError) as err:
        await vs.add_file(T1, vid, "file-cats", chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 51}})
    assert err.value.param == "chunking_strategy.static.chunk_overlap_tokens"
