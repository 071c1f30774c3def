"""The ``file_search`` tool's own rules, without a server: what a tool entry
may hold, how citations are placed, and what the model sees of a stored call."""

from __future__ import annotations

from typing import Any

import pytest

from responsa.protocol.errors import APIError
from responsa.tools.file_search import FileSearchToolset, model_view, parse_tool


@pytest.mark.parametrize(("entry", "param"), [
    ({"type": "file_search"}, "tools[0].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": []}, "tools[0].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": "vs_1"}, "tools[0].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": ["vs_1"] * 11}, "tools[0].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 51}, "tools[0].max_num_results"),
    ({"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": True}, "tools[0].max_num_results"),
    ({"type": "file_search", "vector_store_ids": ["vs_1"], "filters": "a=b"}, "tools[0].filters"),
    ({"type": "file_search", "vector_store_ids": ["vs_1"], "rank": 1}, "tools[0].rank"),
])
def test_bad_entries_are_400s_naming_the_parameter(entry: dict[str, Any], param: str) -> None:
    with pytest.raises(APIError) as err:
        parse_tool(entry, "tools[0]")
    assert err.value.status == 400 and err.value.param == param


def test_a_good_entry_is_echoed_as_sent() -> None:
    entry = {"type": "file_search", "vector_store_ids": ["vs_1", "vs_2"], "max_num_results": 5,
             "filters": {"type": "eq", "key": "lang", "value": "en"},
             "ranking_options": {"ranker": "auto", "score_threshold": 0.2}}
    assert parse_tool(entry, "tools[0]") == entry


def _toolset(files: dict[str, str]) -> FileSearchToolset:
    ts = FileSearchToolset({"type": "file_search", "vector_store_ids": ["vs_1"]}, search=None, tenant="t")  # type: ignore[arg-type]
    ts.files.update(files)
    return ts


def test_a_named_file_is_cited_where_the_answer_names_it() -> None:
    ts = _toolset({"file-a": "guide.md", "file-b": "notes.pdf"})
    text = "Ferrets sleep a lot [guide.md]. Cats purr (see notes.pdf)."
    cites = ts.annotate(text)
    assert [(c["file_id"], c["filename"], text[:c["index"]][-13:]) for c in cites] == [
        ("file-a", "guide.md", "ot [guide.md]"), ("file-b", "notes.pdf", "see notes.pdf")]
    assert all(c["type"] == "file_citation" for c in cites)


def test_an_answer_naming_no_file_cites_every_file_it_was_given_at_its_end() -> None:
    ts = _toolset({"file-a": "guide.md", "file-b": "notes.pdf"})
    text = "Ferrets sleep fourteen hours."
    assert ts.annotate(text) == [
        {"type": "file_citation", "file_id": "file-a", "filename": "guide.md", "index": len(text)},
        {"type": "file_citation", "file_id": "file-b", "filename": "notes.pdf", "index": len(text)}]


def test_no_search_no_citation() -> None:
    assert _toolset({}).annotate("Hello.") == []
    assert _toolset({"file-a": "guide.md"}).annotate("") == []


def test_the_model_sees_a_stored_call_as_a_function_call_and_its_results() -> None:
    call = {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["ferrets"],
            "results": [{"file_id": "file-a", "filename": "guide.md", "score": 0.9, "text": "Ferrets sleep."}]}
    fc, out = model_view([call])
    assert fc["type"] == "function_call" and fc["name"] == "file_search" and fc["call_id"] == "fs_1"
    assert out["type"] == "function_call_output" and "[guide.md]" in out["output"] and "Ferrets sleep." in out["output"]
    failed = model_view([{**call, "status": "failed", "results": None}])[1]
    assert failed["output"] == "File search failed."
    lost = model_view([{**call, "results": None}])[1]
    assert "not kept" in lost["output"]
