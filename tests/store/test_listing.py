"""Listing responses and conversations (store/listing.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from responsa.store import Store
from responsa.store.base import UnknownCursor
from responsa.store.listing import ResponseFilter

T1, T2 = "tenant-one", "tenant-two"
ANY = ResponseFilter()


def _resp(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"resp_{n:04d}_{uuid.uuid4().hex[:8]}", "object": "response", "created_at": 1_700_000_000 + n // 3,
            "status": "completed", "model": "test/echo", "metadata": {}, "previous_response_id": None,
            "conversation_id": None, "background": False, "output": [], **extra}


async def _record(store: Store, tenant: str, n: int, **extra: Any) -> dict[str, Any]:
    resp = _resp(n, **extra)
    await store.record_response(tenant, resp, {"model": resp["model"]}, [])
    return resp


async def _all(store: Store, tenant: str, limit: int, where: ResponseFilter = ANY,
               order: Any = "desc") -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = await store.list_responses(tenant, after=after, limit=limit, order=order, where=where)
        ids += [r["id"] for r in page.data]
        if not page.has_more:
            return ids
        after = page.data[-1]["id"]


async def test_pages_newest_first_by_cursor_and_per_tenant(store: Store) -> None:
    made = [await _record(store, T1, n) for n in range(25)]
    await _record(store, T2, 99)
    newest_first = [r["id"] for r in reversed(made)]  # same-second rows: last inserted first
    assert await _all(store, T1, 7) == newest_first
    assert await _all(store, T1, 4, order="asc") == newest_first[::-1]
    first = await store.list_responses(T1, after=None, limit=3, order="desc", where=ResponseFilter())
    assert first.has_more and [r["id"] for r in first.data] == newest_first[:3]
    assert first.data[0]["object"] == "response"
    assert len(await _all(store, T2, 10)) == 1


async def test_unknown_or_foreign_cursor_is_refused(store: Store) -> None:
    other = await _record(store, T2, 1)
    with pytest.raises(UnknownCursor):
        await store.list_responses(T1, after=other["id"], limit=5, order="desc", where=ResponseFilter())


async def test_filters(store: Store) -> None:
    a = await _record(store, T1, 1, model="test/a", metadata={"team": "blue", "model": "test/b"})
    b = await _record(store, T1, 2, model="test/b", metadata={"team": "red"}, status="failed")
    c = await _record(store, T1, 3, model="test/b", background=True, status="completed", previous_response_id=b["id"])
    await _record(store, T1, 4, model="test/A_%")
    ids = lambda *rs: sorted(r["id"] for r in rs)  # noqa: E731
    # the metadata pair "model":"test/b" of `a` passes the LIKE prefilter but not the exact check
    assert sorted(await _all(store, T1, 1, ResponseFilter(model="test/b"))) == ids(b, c)
    assert sorted(await _all(store, T1, 5, ResponseFilter(model="test/a"))) == ids(a)
    assert await _all(store, T1, 5, ResponseFilter(model="test/%")) == []
    assert sorted(await _all(store, T1, 5, ResponseFilter(metadata={"team": "blue"}))) == ids(a)
    assert await _all(store, T1, 5, ResponseFilter(metadata={"team": "blue", "x": "y"})) == []
    assert await _all(store, T1, 5, ResponseFilter(status=("failed",))) == [b["id"]]
    assert sorted(await _all(store, T1, 5, ResponseFilter(status=("failed", "completed"), model="test/b"))) == ids(b, c)
    assert await _all(store, T1, 5, ResponseFilter(background=True)) == [c["id"]]
    assert await _all(store, T1, 5, ResponseFilter(previous_response_id=b["id"])) == [c["id"]]
    assert await _all(store, T1, 5, ResponseFilter(id_prefix=a["id"][:10])) == [a["id"]]
    assert await _all(store, T1, 5, ResponseFilter(id_prefix="resp_%")) == []
    assert await _all(store, T2, 5, ResponseFilter(model="test/b")) == []


async def test_sparse_filter_scans_past_one_batch(store: Store) -> None:
    rare = await _record(store, T1, 0, model="test/rare")
    for n in range(1, 260):
        await _record(store, T1, n, metadata={"m": "test/rare"})
    assert await _all(store, T1, 2, ResponseFilter(model="test/rare")) == [rare["id"]]


async def test_conversations(store: Store) -> None:
    made = []
    for n in range(5):
        conv = {"id": f"conv_{n}_{uuid.uuid4().hex[:6]}", "object": "conversation", "created_at": 1_700_000_000 + n,
                "metadata": {"n": str(n)}}
        await store.create_conversation(T1, conv, [])
        made.append(conv)
    await store.create_conversation(T2, {**made[0], "id": "conv_other"}, [])
    page = await store.list_conversations(T1, after=None, limit=3, order="desc")
    assert page.has_more and page.data == made[::-1][:3]
    rest = await store.list_conversations(T1, after=page.data[-1]["id"], limit=3, order="desc")
    assert not rest.has_more and rest.data == made[::-1][3:]
    with pytest.raises(UnknownCursor):
        await store.list_conversations(T1, after="conv_other", limit=3, order="desc")
