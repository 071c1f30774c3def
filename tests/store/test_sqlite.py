"""SQLite-only behaviour: checkpoints happen off the request path, the
durability mode is chosen by the database URL, every store method is one
hop to the store's thread, and writes queued together share one commit."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from responsa.protocol.ids import new_id
from responsa.store import open_store, sql, sqlite_lib
from responsa.store.base import IdempotencyConflict
from responsa.store.driver import Conn
from responsa.store.sqlite import CHECKPOINT_S, SQLiteStore
from tests.helpers import async_wait_until
from tests.store.test_store_contract import T1, T2, create, message, response


@pytest.mark.slow  # waits for the checkpointer's timer (CHECKPOINT_S)
async def test_wal_is_checkpointed_in_the_background_and_truncated_on_close(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    for i in range(200):
        await create(store, T1, inputs=[message(f"m{i}")])
    assert (tmp_path / "c.db-wal").stat().st_size > 0
    before = path.stat().st_size  # the writes are still only in the WAL: no commit checkpoints
    await async_wait_until(lambda: path.stat().st_size > before, CHECKPOINT_S * 10,
                           what="the background checkpointer to copy the WAL into the file")
    await store.close()
    assert not (tmp_path / "c.db-wal").exists() or (tmp_path / "c.db-wal").stat().st_size == 0


@pytest.mark.parametrize(("query", "expected"), [("", "normal"), ("?synchronous=full", "full"),
                                                 ("?synchronous=NORMAL", "normal")])
def test_synchronous_from_url(tmp_path: Path, query: str, expected: str) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}{query}")
    assert isinstance(store, SQLiteStore) and store.synchronous == expected


def test_bad_synchronous_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?synchronous=off")


def _count_hops(store: SQLiteStore) -> list[bool]:
    """Records each call run on the store's thread (``True``: as a transaction)."""
    hops: list[bool] = []
    run = store.driver._run

    def counted(op: Any, transaction: bool) -> Any:
        hops.append(transaction)
        return run(op, transaction)

    store.driver._run = counted  # type: ignore[method-assign]
    return hops


async def test_one_thread_hop_per_store_method(tmp_path: Path) -> None:
    """The property that made the SQLite store fast: each method runs its
    whole operation in ONE call on the store's thread, however many
    statements it issues (the hot non-streamed write is one transaction)."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    assert isinstance(store, SQLiteStore)
    await store.open()
    hops = _count_hops(store)
    try:
        conv = {"id": "conv_h", "object": "conversation", "created_at": 1, "metadata": {}}
        await store.create_conversation(T1, conv, [message("c0")])
        resp = {"id": "resp_h", "object": "response", "created_at": 1, "status": "completed",
                "previous_response_id": None, "conversation_id": "conv_h", "background": False,
                "output": [message("out", "assistant")]}
        hops.clear()
        await store.record_response(T1, resp, {"model": "m"}, [message("in")], [message("in"), message("out")])
        assert hops == [True], "record_response: one transaction, one hop"
        hops.clear()
        assert await store.load_context(T1, "resp_h") is not None
        assert await store.list_conversation_items(T1, "conv_h", after=None, limit=2, order="asc") is not None
        assert hops == [False, False]
    finally:
        await store.close()


async def test_an_operation_may_await_only_its_connection(tmp_path: Path) -> None:
    """An operation that awaits anything else would suspend on the store's
    thread with its transaction open: the driver refuses it and rolls back."""
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    assert isinstance(store, SQLiteStore)
    await store.open()
    try:
        async def strays(db: Conn) -> None:
            await db.execute(sql.INSERT_SECRET, "stray", "x")
            await asyncio.sleep(0)

        with pytest.raises(RuntimeError, match="awaited something other"):
            await store.driver.write(strays)
        assert await store.driver.read(lambda db: db.fetchval(sql.GET_SECRET, "stray")) is None
    finally:
        await store.close()


async def _queued_behind_a_busy_thread(store: SQLiteStore, calls: list[Any]) -> list[Any]:
    """Run ``calls`` (coroutines) while the store's thread is held busy, so
    they are all queued when it wakes: one batch, deterministically."""
    hold = threading.Event()
    busy = asyncio.ensure_future(store.driver.call(lambda _db: hold.wait(10)))
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0)  # every task has queued its call
    hold.set()
    await busy
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_writes_queued_together_share_one_commit(tmp_path: Path) -> None:
    """Group commit: concurrent responses are committed together (one
    transaction), and each caller returns with its own write durable."""
    store = open_store(f"sqlite:///{tmp_path / 'g.db'}")
    assert isinstance(store, SQLiteStore)
    await store.open()
    try:
        resps = [response(status="completed", output=[message(f"out{i}", "assistant")]) for i in range(20)]
        before = store.driver.commits
        results = await _queued_behind_a_busy_thread(
            store, [store.record_response(T1, r, {"model": "m"}, [message(f"in{i}")]) for i, r in enumerate(resps)])
        assert results == [None] * 20
        assert store.driver.commits - before == 1
        for r in resps:
            assert await store.get_response(T1, r["id"]) == r
    finally:
        await store.close()
    reopened = open_store(f"sqlite:///{tmp_path / 'g.db'}")
    await reopened.open()
    try:
        assert all([await reopened.get_response(T1, r["id"]) == r for r in resps])
    finally:
        await reopened.close()


async def test_a_failing_write_fails_alone_in_its_batch(tmp_path: Path) -> None:
    """One caller's error inside a group (a reused idempotency key) rolls the
    group back and re-runs its writes one by one: only that caller fails."""
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    assert isinstance(store, SQLiteStore)
    await store.open()
    try:
        first = await create(store, T1, key="k1")
        rivals = [response() for _ in range(5)]
        calls = [store.create_response(T1, r, {"model": "m"}, [message("x")], idempotency_key=key)
                 for r, key in zip(rivals, ["a", "b", "k1", "c", "k1"], strict=True)]
        calls.append(store.create_response(T2, response(), {"model": "m"}, [message("x")], idempotency_key="k1"))
        results = await _queued_behind_a_busy_thread(store, calls)
        assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "IdempotencyConflict", "NoneType",
                                                       "IdempotencyConflict", "NoneType"]
        assert all(isinstance(r, IdempotencyConflict) and r.response_id == first["id"] for r in results[2::2])
        for r, ok in zip(rivals, [True, True, False, True, False], strict=True):
            assert (await store.get_response(T1, r["id"]) is not None) == ok
    finally:
        await store.close()


def test_ids_sort_in_creation_order() -> None:
    """New rows of id-keyed indexes land on their last page (fewer pages per
    commit), because ids created later sort later; still 48 hex digits."""
    ids = [new_id("resp") for _ in range(200)]
    assert ids == sorted(ids) and len(set(ids)) == 200
    assert all(len(i) == len("resp_") + 48 and int(i[5:], 16) >= 0 for i in ids)


async def test_a_batch_runs_in_queue_order(tmp_path: Path) -> None:
    """A read queued after writes sees them, and closing the store after
    writes were queued lets them commit first (a batch is not reordered)."""
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    assert isinstance(store, SQLiteStore)
    await store.open()
    resps = [response(status="completed") for _ in range(5)]
    *_, seen = await _queued_behind_a_busy_thread(
        store, [*(store.record_response(T1, r, {"model": "m"}, []) for r in resps),
                store.get_response(T1, resps[0]["id"])])
    assert seen == resps[0]
    late = [response(status="completed") for _ in range(5)]
    hold = threading.Event()
    busy = asyncio.ensure_future(store.driver.call(lambda _db: hold.wait(10)))
    writes = [asyncio.ensure_future(store.record_response(T1, r, {"model": "m"}, [])) for r in late]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)
    hold.set()
    await asyncio.gather(busy, *writes, closing)
    reopened = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    await reopened.open()
    try:
        assert [await reopened.get_response(T1, r["id"]) for r in late] == late
    finally:
        await reopened.close()


async def test_a_caller_alone_runs_small_calls_inline_and_durably(tmp_path: Path) -> None:
    """With one turn running (``alone``), a response's writes and reads run
    on the caller's thread (no hop to the store's thread) and are committed
    when they return: another connection sees them at once. Bulk calls
    (files, vector chunks) still go to the store's thread, and so does
    everything once the caller is no longer alone."""
    alone = [True]
    store = open_store(f"sqlite:///{tmp_path / 'i.db'}", alone=lambda: alone[0])
    assert isinstance(store, SQLiteStore)
    await store.open()
    hops = _count_hops(store)
    try:
        resp = response(status="completed", output=[message("out", "assistant")])
        before = store.driver.inlined
        await store.record_response(T1, resp, {"model": "m"}, [message("in")])
        assert hops == [] and store.driver.inlined == before + 1
        other = sqlite_lib.connect(str(tmp_path / "i.db"))
        try:
            assert other.execute("SELECT status FROM responses WHERE id = ?", (resp["id"],)).fetchone() == (
                "completed",)
        finally:
            other.close()
        assert await store.get_response(T1, resp["id"]) == resp
        assert hops == []
        await store.create_file(T1, {"id": "file_i", "object": "file", "bytes": 1, "created_at": 1,
                                     "filename": "a.txt", "purpose": "assistants", "expires_at": None},
                                "database", [b"x"])
        assert hops == [True], "a bulk write still goes to the store's thread"
        alone[0] = False
        hops.clear()
        await store.record_response(T1, response(status="completed"), {"model": "m"}, [])
        assert hops == [True], "not alone: queued for group commit"
    finally:
        await store.close()


async def test_an_inline_write_never_waits_for_another_writer(tmp_path: Path) -> None:
    """A caller alone must not stall the event loop on SQLite's lock: while
    another connection holds the write lock, the write goes to the store's
    thread (which waits for the lock) and lands once the lock is free."""
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", alone=lambda: True)
    assert isinstance(store, SQLiteStore)
    await store.open()
    other = sqlite_lib.connect(str(tmp_path / "w.db"), isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        resp = response(status="completed")
        write = asyncio.ensure_future(store.record_response(T1, resp, {"model": "m"}, []))
        await asyncio.sleep(0.05)
        assert not write.done(), "the write waits for the lock, off the event loop"
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert await store.get_response(T1, resp["id"]) == resp
    finally:
        other.close()
        await store.close()
