"""The ``Store`` contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import inspect
import math
import time
import uuid
from typing import Any

import pytest

from responsa.store import Store, open_store
from responsa.store.base import IdempotencyConflict, UnknownCursor
from responsa.store.base import Store as StoreProtocol
from responsa.store.driver import DuplicateKey, UnstorableText
from responsa.store.postgres import PostgresStore
from responsa.store.sqlite import SQLiteStore

T1, T2 = "tenant-one", "tenant-two"


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def message(text: str, role: str = "user", item_id: str | None = None) -> dict[str, Any]:
    return {"id": item_id or _id("msg"), "type": "message", "role": role, "status": "completed",
            "content": [{"type": "input_text" if role == "user" else "output_text", "text": text}]}


def response(rid: str | None = None, *, status: str = "in_progress", previous: str | None = None,
             output: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": rid or _id("resp"), "object": "response", "created_at": 1_700_000_000, "status": status,
            "previous_response_id": previous, "conversation_id": None, "background": False,
            "output": output or [], **extra}


async def create(store: Store, tenant: str, *, inputs: list[dict[str, Any]] | None = None,
                 key: str | None = None, lease: tuple[str, float] | None = None, **kw: Any) -> dict[str, Any]:
    resp = response(**kw)
    await store.create_response(tenant, resp, {"model": "test/echo", "input": "x"},
                                inputs if inputs is not None else [message("hi")], idempotency_key=key, lease=lease)
    return resp


async def finish(store: Store, tenant: str, resp: dict[str, Any], *texts: str) -> dict[str, Any]:
    done = {**resp, "status": "completed", "output": [message(t, "assistant") for t in texts]}
    await store.finish_response(tenant, done)
    return done


def texts(items: list[dict[str, Any]]) -> list[str]:
    return [it["content"][0]["text"] for it in items]


@pytest.mark.parametrize("impl", [SQLiteStore, PostgresStore])
def test_implements_every_protocol_method(impl: type) -> None:
    """A method added to the protocol but missing from a backend fails here,
    not in production on the backend nobody ran locally."""
    wanted = {n for n, _ in inspect.getmembers(StoreProtocol, inspect.isfunction) if not n.startswith("_")}
    missing = sorted(n for n in wanted if not inspect.iscoroutinefunction(getattr(impl, n, None)))
    assert not missing, f"{impl.__name__} lacks {missing}"
    for name in wanted:
        proto = inspect.signature(getattr(StoreProtocol, name))
        mine = inspect.signature(getattr(impl, name))
        assert list(mine.parameters) == list(proto.parameters), f"{impl.__name__}.{name} signature differs"


async def test_create_finish_get(store: Store) -> None:
    inputs = [message("hello ☃ \x00 nul"), message("second")]
    resp = await create(store, T1, inputs=inputs, metadata={"k": "v"})
    assert await store.get_response(T1, resp["id"]) == resp
    assert await store.get_request(T1, resp["id"]) == {"model": "test/echo", "input": "x"}
    done = await finish(store, T1, resp, "answer")
    assert await store.get_response(T1, resp["id"]) == done
    found = await store.get_items(T1, [inputs[0]["id"], done["output"][0]["id"], "msg_missing"])
    assert found == {inputs[0]["id"]: inputs[0], done["output"][0]["id"]: done["output"][0]}
    assert await store.get_items(T1, []) == {}


async def test_finish_twice_replaces_output(store: Store) -> None:
    resp = await create(store, T1)
    await finish(store, T1, resp, "first", "draft")
    assert texts(await store.load_context(T1, resp["id"]) or []) == ["hi", "first", "draft"]
    await finish(store, T1, resp, "final")
    assert texts(await store.load_context(T1, resp["id"]) or []) == ["hi", "final"]


async def test_a_chain_read_again_is_read_from_the_database(store: Store, store_url: str) -> None:
    """Reading a chain again (its finished responses' items are kept parsed)
    gives what the database holds now, whichever replica changed it: a
    response deleted elsewhere, or deleted and made again under its id
    here, and another tenant's view."""
    other = open_store(store_url)  # a second replica on the same database
    await other.open()
    try:
        chain, prev = [], None
        for hop in range(4):
            resp = await create(store, T1, previous=prev, inputs=[message(f"q{hop}")])
            await finish(store, T1, resp, f"a{hop}")
            chain.append(resp["id"])
            prev = resp["id"]
        everything = [t for hop in range(4) for t in (f"q{hop}", f"a{hop}")]
        for _ in range(2):
            assert texts(await store.load_context(T1, chain[3]) or []) == everything
        assert await store.load_context(T2, chain[3]) is None
        assert await other.delete_response(T1, chain[1]) is True  # the link from hop 2 is broken now
        assert texts(await store.load_context(T1, chain[3]) or []) == ["q2", "a2", "q3", "a3"]
        assert texts(await store.load_context(T1, chain[0]) or []) == ["q0", "a0"]
        assert await store.delete_response(T1, chain[0]) is True
        again = await create(store, T1, rid=chain[0], inputs=[message("new q0")])
        await finish(store, T1, again, "new a0")
        assert texts(await store.load_context(T1, chain[0]) or []) == ["new q0", "new a0"]
    finally:
        await other.close()


async def test_missing_response(store: Store) -> None:
    assert await store.get_response(T1, "resp_nope") is None
    assert await store.get_request(T1, "resp_nope") is None
    assert await store.load_context(T1, "resp_nope") is None
    assert await store.delete_response(T1, "resp_nope") is False
    page = await store.list_input_items(T1, "resp_nope", after=None, before=None, limit=20, order="asc")
    assert page is None


async def test_delete(store: Store) -> None:
    inputs = [message("a")]
    resp = await create(store, T1, inputs=inputs)
    await finish(store, T1, resp, "b")
    assert await store.delete_response(T1, resp["id"]) is True
    assert await store.get_response(T1, resp["id"]) is None
    assert await store.get_items(T1, [inputs[0]["id"]]) == {}
    assert await store.delete_response(T1, resp["id"]) is False
    # The id is free again, and its old items do not come back.
    await create(store, T1, rid=resp["id"], inputs=[])
    assert await store.load_context(T1, resp["id"]) == []


async def test_text_with_nul_is_refused_alike(store: Store) -> None:
    """PostgreSQL's text cannot hold NUL: both backends refuse it the same way
    (SQLite stored it or looked it up and found nothing; PostgreSQL raised
    its own encoding error), and the store stays usable."""
    for lookup in (store.get_response(T1, "resp_\x00"), store.get_conversation(T1, "conv_\x00"),
                   store.get_prompt(T1, "p\x00"), store.get_items(T1, ["a", "msg_\x00"])):
        with pytest.raises(UnstorableText):
            await lookup
    with pytest.raises(UnstorableText):
        await create(store, T1, rid="resp_\x00")
    with pytest.raises(UnstorableText):
        await create(store, T1, inputs=[message("x", item_id="msg_\x00")])
    resp = await create(store, T1, inputs=[message("payload NUL \x00 is JSON-escaped: fine")])
    assert await store.get_response(T1, resp["id"]) == resp


async def test_idempotency(store: Store) -> None:
    first = await create(store, T1, key="k-1")
    with pytest.raises(IdempotencyConflict) as err:
        await create(store, T1, key="k-1")
    assert err.value.response_id == first["id"]
    # The failed attempt left nothing behind, and the store is still usable.
    other = await create(store, T2, key="k-1")  # keys are per tenant
    assert await store.get_response(T2, other["id"]) is not None
    await create(store, T1)
    await create(store, T1)  # no key: never a conflict


async def test_idempotency_concurrent(store: Store) -> None:
    """Ten racing creates with one key: exactly one wins, the rest learn its id."""
    results = await asyncio.gather(*(create(store, T1, key="race") for _ in range(10)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, IdempotencyConflict)]
    assert len(winners) == 1 and len(losers) == 9, results
    assert {e.response_id for e in losers} == {winners[0]["id"]}


async def test_duplicate_id_without_key_raises(store: Store) -> None:
    """Both drivers report a unique violation as the same ``DuplicateKey``
    (SQLite's IntegrityError and asyncpg's UniqueViolationError were caught
    separately, and SQLite's catch also swallowed NOT NULL/foreign-key errors)."""
    resp = await create(store, T1)
    with pytest.raises(DuplicateKey):
        await create(store, T1, rid=resp["id"])
    with pytest.raises(DuplicateKey):  # the id is taken, not the key: no IdempotencyConflict
        await create(store, T1, rid=resp["id"], key="fresh-key")
    assert await store.get_response(T1, resp["id"]) == resp


async def test_chain_of_50_in_one_statement_once_read(store_url: str) -> None:
    statements: list[str] = []
    if store_url.startswith("sqlite"):
        store: Store = open_store(store_url)
        await store.open()
        assert isinstance(store, SQLiteStore)
        await store.driver.call(lambda db: db.set_trace_callback(statements.append))  # on the store's own thread
    else:
        def record(rec: Any) -> None:
            if "pg_advisory_unlock_all" not in rec.query:  # the pool's reset on release
                statements.append(rec.query)

        async def setup(conn: Any) -> None:  # every acquire; the logger set keeps one copy
            conn.add_query_logger(record)
        store = PostgresStore(store_url, setup=setup)
        await store.open()
    try:
        prev = None
        for hop in range(50):
            resp = await create(store, T1, previous=prev, inputs=[message(f"q{hop}")])
            await finish(store, T1, resp, f"a{hop}")
            prev = resp["id"]
        await create(store, T2, previous=prev)  # another tenant's link does not extend T1's chain
        assert prev is not None
        everything = [t for hop in range(50) for t in (f"q{hop}", f"a{hop}")]
        statements.clear()
        # Read first, the chain and then the older hops' items; after that
        # they are kept parsed, and the chain (with its tip's items) is
        # one statement, also for a turn that continues it.
        assert texts(await store.load_context(T1, prev) or []) == everything
        assert len(statements) == 2, statements
        statements.clear()
        assert texts(await store.load_context(T1, prev) or []) == everything
        assert len(statements) == 1, statements
        last = await create(store, T1, previous=prev, inputs=[message("q50")])
        await finish(store, T1, last, "a50")
        statements.clear()
        assert texts(await store.load_context(T1, last["id"]) or []) == [*everything, "q50", "a50"]
        assert len(statements) == 1, statements
        assert await store.load_context(T2, prev) is None
    finally:
        await store.close()


async def test_chain_of_unfinished_and_empty_responses(store: Store) -> None:
    empty = await create(store, T1, inputs=[])
    assert await store.load_context(T1, empty["id"]) == []  # exists: [] not None
    running = await create(store, T1, previous=empty["id"], inputs=[message("only input")])
    assert texts(await store.load_context(T1, running["id"]) or []) == ["only input"]


async def test_input_item_pagination(store: Store) -> None:
    inputs = [message(f"m{i}", item_id=f"msg_{i}") for i in range(7)]
    resp = await create(store, T1, inputs=inputs)
    rid = resp["id"]

    async def ids(**kw: Any) -> tuple[list[str], bool]:
        args: dict[str, Any] = {"after": None, "before": None, "limit": 20, "order": "asc", **kw}
        page = await store.list_input_items(T1, rid, **args)
        assert page is not None
        return [it["id"] for it in page.data], page.has_more

    assert await ids() == ([f"msg_{i}" for i in range(7)], False)
    assert await ids(limit=3) == (["msg_0", "msg_1", "msg_2"], True)
    assert await ids(limit=3, after="msg_2") == (["msg_3", "msg_4", "msg_5"], True)
    assert await ids(limit=3, after="msg_5") == (["msg_6"], False)
    assert await ids(limit=3, order="desc") == (["msg_6", "msg_5", "msg_4"], True)
    assert await ids(limit=3, order="desc", after="msg_4") == (["msg_3", "msg_2", "msg_1"], True)
    assert await ids(before="msg_3") == (["msg_0", "msg_1", "msg_2"], False)
    assert await ids(order="desc", before="msg_3") == (["msg_6", "msg_5", "msg_4"], False)
    assert await ids(after="msg_1", before="msg_5") == (["msg_2", "msg_3", "msg_4"], False)
    assert await ids(limit=1, after="msg_1", before="msg_5") == (["msg_2"], True)
    for cursor in ("after", "before"):
        with pytest.raises(UnknownCursor) as unknown:
            await ids(**{cursor: "msg_unknown"})
        assert unknown.value.param == cursor and unknown.value.status == 400
    # Output items are not input items.
    await finish(store, T1, resp, "out")
    assert (await ids())[0] == [f"msg_{i}" for i in range(7)]


async def test_tenant_isolation(store: Store) -> None:
    inputs = [message("secret")]
    resp = await create(store, T1, inputs=inputs)
    done = await finish(store, T1, resp, "private")
    rid = resp["id"]
    assert await store.get_response(T2, rid) is None
    assert await store.get_request(T2, rid) is None
    assert await store.load_context(T2, rid) is None
    assert await store.get_items(T2, [inputs[0]["id"]]) == {}
    assert await store.list_input_items(T2, rid, after=None, before=None, limit=20, order="asc") is None
    assert await store.delete_response(T2, rid) is False
    other = {**resp, "status": "failed", "output": []}
    await store.finish_response(T2, other)  # another tenant cannot overwrite it either
    assert await store.get_response(T1, rid) == done
    assert texts(await store.load_context(T1, rid) or []) == ["secret", "private"]


async def test_concurrent_open_migrates_once(store_url: str) -> None:
    """Two replicas starting together on an empty database."""
    stores = [open_store(store_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        resp = await create(stores[0], T1)
        assert await stores[2].get_response(T1, resp["id"]) == resp
    finally:
        for s in stores:
            await s.close()
    again = open_store(store_url)  # and a restart applies nothing twice
    await again.open()
    await again.close()


def conversation(cid: str | None = None, **metadata: str) -> dict[str, Any]:
    return {"id": cid or _id("conv"), "object": "conversation", "created_at": 1_700_000_000, "metadata": metadata}


async def test_conversation_lifecycle(store: Store) -> None:
    conv = conversation(topic="x")
    first = [message("c0", item_id="msg_c0"), message("c1", item_id="msg_c1")]
    await store.create_conversation(T1, conv, first)
    assert await store.get_conversation(T1, conv["id"]) == conv
    assert await store.update_conversation(T1, conv["id"], {"topic": "y"}) == {**conv, "metadata": {"topic": "y"}}
    assert await store.append_conversation_items(T1, conv["id"], [message("c2", item_id="msg_c2")]) is True
    assert texts(await store.load_conversation(T1, conv["id"]) or []) == ["c0", "c1", "c2"]
    assert (await store.get_conversation_item(T1, conv["id"], "msg_c1") or {})["id"] == "msg_c1"

    async def ids(**kw: Any) -> tuple[list[str], bool]:
        args: dict[str, Any] = {"after": None, "limit": 20, "order": "asc", **kw}
        page = await store.list_conversation_items(T1, conv["id"], **args)
        assert page is not None
        return [it["id"] for it in page.data], page.has_more

    assert await ids(limit=2) == (["msg_c0", "msg_c1"], True)
    assert await ids(after="msg_c1") == (["msg_c2"], False)
    assert await ids(order="desc", limit=2) == (["msg_c2", "msg_c1"], True)
    assert await ids(order="desc", after="msg_c1") == (["msg_c0"], False)
    with pytest.raises(UnknownCursor) as unknown:
        await ids(after="msg_nope")
    assert unknown.value.param == "after" and unknown.value.status == 400

    assert await store.delete_conversation_item(T1, conv["id"], "msg_c1") is True
    assert await store.delete_conversation_item(T1, conv["id"], "msg_c1") is False
    assert texts(await store.load_conversation(T1, conv["id"]) or []) == ["c0", "c2"]
    assert await store.delete_conversation(T1, conv["id"]) is True
    assert await store.get_conversation(T1, conv["id"]) is None
    assert await store.load_conversation(T1, conv["id"]) is None
    assert await store.list_conversation_items(T1, conv["id"], after=None, limit=20, order="asc") is None
    assert await store.append_conversation_items(T1, conv["id"], [message("late")]) is False
    assert await store.delete_conversation(T1, conv["id"]) is False


async def test_empty_conversation(store: Store) -> None:
    conv = conversation()
    await store.create_conversation(T1, conv, [])
    assert await store.load_conversation(T1, conv["id"]) == []
    page = await store.list_conversation_items(T1, conv["id"], after=None, limit=20, order="desc")
    assert page is not None and page.data == [] and not page.has_more


async def test_conversation_tenant_isolation(store: Store) -> None:
    conv = conversation()
    await store.create_conversation(T1, conv, [message("mine", item_id="msg_mine")])
    cid = conv["id"]
    assert await store.get_conversation(T2, cid) is None
    assert await store.update_conversation(T2, cid, {"a": "b"}) is None
    assert await store.load_conversation(T2, cid) is None
    assert await store.append_conversation_items(T2, cid, [message("theirs")]) is False
    assert await store.list_conversation_items(T2, cid, after=None, limit=20, order="asc") is None
    assert await store.get_conversation_item(T2, cid, "msg_mine") is None
    assert await store.delete_conversation_item(T2, cid, "msg_mine") is False
    assert await store.delete_conversation(T2, cid) is False
    assert texts(await store.load_conversation(T1, cid) or []) == ["mine"]
    assert await store.get_conversation(T1, cid) == conv


async def test_concurrent_appends_never_interleave(store: Store) -> None:
    """Twenty writers appending three items each at once: every batch lands
    contiguously and no position is lost or reused."""
    conv = conversation()
    await store.create_conversation(T1, conv, [])
    batches = [[message(f"w{w}-{i}") for i in range(3)] for w in range(20)]
    done = await asyncio.gather(*(store.append_conversation_items(T1, conv["id"], b) for b in batches))
    assert all(done)
    got = texts(await store.load_conversation(T1, conv["id"]) or [])
    assert len(got) == 60
    for start in range(0, 60, 3):
        writer = got[start].split("-")[0]
        assert got[start:start + 3] == [f"{writer}-{i}" for i in range(3)]
    assert sorted(got) == sorted(t for b in batches for t in texts(b))


async def test_finish_appends_to_conversation_atomically(store: Store) -> None:
    conv = conversation()
    await store.create_conversation(T1, conv, [message("before")])
    resp = await create(store, T1, conversation_id=conv["id"], inputs=[message("q")])
    done = {**resp, "status": "completed", "output": [message("a", "assistant")]}
    await store.finish_response(T1, done, [message("q"), *done["output"]])
    assert texts(await store.load_conversation(T1, conv["id"]) or []) == ["before", "q", "a"]
    # A conversation deleted mid-turn does not stop the response from finishing.
    resp2 = await create(store, T1, conversation_id=conv["id"])
    await store.delete_conversation(T1, conv["id"])
    await store.finish_response(T1, {**resp2, "status": "completed"}, [message("lost")])
    assert (await store.get_response(T1, resp2["id"]) or {})["status"] == "completed"


def prompt(pid: str, text: str) -> dict[str, Any]:
    return {"id": pid, "object": "prompt", "created_at": 1_700_000_000, "instructions": text}


async def test_prompt_versions(store: Store) -> None:
    assert (await store.create_prompt(T1, prompt("pmpt_a", "v1")) or {})["version"] == "1"
    assert await store.create_prompt(T1, prompt("pmpt_a", "again")) is None
    assert (await store.add_prompt_version(T1, prompt("pmpt_a", "v2")) or {})["version"] == "2"
    assert (await store.get_prompt(T1, "pmpt_a") or {})["instructions"] == "v2"
    assert (await store.get_prompt(T1, "pmpt_a", 1) or {})["instructions"] == "v1"
    assert await store.get_prompt(T1, "pmpt_a", 9) is None
    assert [p["version"] for p in await store.list_prompt_versions(T1, "pmpt_a")] == ["1", "2"]
    assert [p["instructions"] for p in await store.list_prompts(T1)] == ["v2"]
    assert await store.prompt_owner(T1, "pmpt_a") == T1
    # Another tenant sees none of it.
    assert await store.prompt_owner(T2, "pmpt_a") is None
    assert await store.get_prompt(T2, "pmpt_a") is None
    assert await store.add_prompt_version(T2, prompt("pmpt_a", "hijack")) is None
    assert await store.list_prompts(T2) == []
    assert await store.list_prompt_versions(T2, "pmpt_a") == []
    assert await store.delete_prompt(T2, "pmpt_a") is False
    assert await store.delete_prompt(T1, "pmpt_a") is True
    assert await store.get_prompt(T1, "pmpt_a") is None
    assert await store.delete_prompt(T1, "pmpt_a") is False


async def test_seeded_prompts_are_shared_and_read_only(store: Store) -> None:
    await store.create_prompt("", prompt("pmpt_seed", "seeded"))
    for tenant in (T1, T2):
        assert await store.prompt_owner(tenant, "pmpt_seed") == ""
        assert (await store.get_prompt(tenant, "pmpt_seed") or {})["instructions"] == "seeded"
        assert [p["version"] for p in await store.list_prompt_versions(tenant, "pmpt_seed")] == ["1"]
        assert await store.create_prompt(tenant, prompt("pmpt_seed", "shadow")) is None
        assert await store.add_prompt_version(tenant, prompt("pmpt_seed", "edit")) is None
        assert await store.delete_prompt(tenant, "pmpt_seed") is False
    assert [p["id"] for p in await store.list_prompts(T1)] == ["pmpt_seed"]


async def test_concurrent_prompt_versions_are_distinct(store: Store) -> None:
    await store.create_prompt(T1, prompt("pmpt_c", "v1"))
    made = await asyncio.gather(*(store.add_prompt_version(T1, prompt("pmpt_c", f"n{i}")) for i in range(10)))
    assert sorted(int((m or {})["version"]) for m in made) == list(range(2, 12))
    racing = await asyncio.gather(*(store.create_prompt(T2, prompt("pmpt_race", str(i))) for i in range(5)))
    assert sum(r is not None for r in racing) == 1


def ev(seq: int, kind: str = "response.output_text.delta") -> dict[str, Any]:
    return {"type": kind, "sequence_number": seq}


async def test_background_job_lifecycle(store: Store) -> None:
    now = time.time()
    job = await create(store, T1, status="queued", background=True, lease=("replica-a", now + 30))
    rid = job["id"]
    running = {**job, "status": "in_progress"}
    assert await store.append_events(T1, rid, "replica-a", [ev(0), ev(1)], response=running) is True
    assert (await store.get_response(T1, rid) or {})["status"] == "in_progress"
    assert await store.append_events(T1, rid, "replica-b", [ev(2)]) is False  # not the holder
    assert await store.get_events(T1, rid, -1) == [ev(0), ev(1)]
    assert await store.get_events(T1, rid, 0) == [ev(1)]
    assert await store.get_events(T2, rid, -1) == []

    assert (T1, rid, "in_progress") not in await store.expired_jobs(now, 100)
    assert (T1, rid, "in_progress") in await store.expired_jobs(now + 60, 100)
    await store.renew_leases("replica-a", now + 120)
    assert (T1, rid, "in_progress") not in await store.expired_jobs(now + 60, 100)
    assert await store.claim_job(T1, rid, "replica-b", now + 200, now + 230) is False  # started: not claimable

    done = {**job, "status": "completed", "output": [message("out", "assistant")]}
    assert await store.finish_response(T1, done, owner="replica-b", events=[ev(2, "response.completed")]) is False
    assert await store.finish_response(T1, done, owner="replica-a", events=[ev(2, "response.completed")]) is True
    assert await store.get_response(T1, rid) == done
    assert [e["sequence_number"] for e in await store.get_events(T1, rid, -1)] == [0, 1, 2]
    assert all(j[1] != rid for j in await store.expired_jobs(now + 10_000, 100))
    assert await store.close_job(T1, {**job, "status": "cancelled"}, [ev(0)], expired_before=math.inf) is None


async def test_close_job_renumbers_after_stored_events(store: Store) -> None:
    now = time.time()
    job = await create(store, T1, status="queued", background=True, lease=("replica-a", now + 30))
    rid = job["id"]
    await store.append_events(T1, rid, "replica-a", [ev(0), ev(1)], response={**job, "status": "in_progress"})
    cancelled = {**job, "status": "cancelled"}
    assert await store.close_job(T1, cancelled, [ev(0)], expired_before=now) is None  # runner's lease still live
    stored = await store.close_job(T1, cancelled, [ev(0), ev(0, "response.cancelled")], expired_before=math.inf)
    assert [e["sequence_number"] for e in stored or []] == [2, 3]
    assert [e["sequence_number"] for e in await store.get_events(T1, rid, -1)] == [0, 1, 2, 3]
    assert await store.get_response(T1, rid) == cancelled
    # The old runner can no longer write to it.
    assert await store.append_events(T1, rid, "replica-a", [ev(4)]) is False
    assert await store.finish_response(T1, {**job, "status": "completed"}, owner="replica-a") is False
    assert await store.get_response(T1, rid) == cancelled


async def test_expired_queued_job_is_claimed_once(store: Store) -> None:
    now = time.time()
    job = await create(store, T1, status="queued", background=True, lease=("dead-replica", now - 1))
    assert (T1, job["id"], "queued") in await store.expired_jobs(now, 100)
    owners = [f"replica-{i}" for i in range(6)]
    won = await asyncio.gather(*(store.claim_job(T1, job["id"], o, now, now + 30) for o in owners))
    assert sum(won) == 1
    winner = owners[won.index(True)]
    assert all(j[1] != job["id"] for j in await store.expired_jobs(now, 100))
    assert await store.append_events(T1, job["id"], winner, [ev(0)]) is True
    assert await store.claim_job(T2, job["id"], "thief", now + 100, now + 130) is False


async def test_record_response_writes_the_response_and_its_items_at_once(store: Store) -> None:
    """The non-streamed write (one statement on PostgreSQL, one transaction on
    SQLite): the response, its input and output items, readable every way;
    a taken id or a NUL id is refused alike and leaves nothing behind."""
    inputs = [message("q1"), message("q2")]
    first = response(status="completed", output=[message("a1", "assistant")])
    await store.record_response(T1, first, {"model": "m", "input": "q"}, inputs)
    assert await store.get_response(T1, first["id"]) == first
    assert await store.get_request(T1, first["id"]) == {"model": "m", "input": "q"}
    second = response(status="completed", previous=first["id"], output=[message("a2", "assistant"),
                                                                         message("a3", "assistant")])
    await store.record_response(T1, second, {"model": "m"}, [])
    assert texts(await store.load_context(T1, second["id"]) or []) == ["q1", "q2", "a1", "a2", "a3"]
    page = await store.list_input_items(T1, first["id"], after=None, before=None, limit=10, order="asc")
    assert page is not None and texts(page.data) == ["q1", "q2"]
    out = second["output"][1]
    assert await store.get_items(T1, [out["id"], inputs[0]["id"]]) == {out["id"]: out, inputs[0]["id"]: inputs[0]}
    assert await store.get_items(T2, [out["id"]]) == {}
    with pytest.raises(DuplicateKey):
        await store.record_response(T1, {**first, "output": []}, {"model": "m"}, [message("again")])
    with pytest.raises(UnstorableText):
        await store.record_response(T1, response(status="completed"), {"model": "m"},
                                    [message("x", item_id="msg_\x00")])
    assert texts(await store.load_context(T1, first["id"]) or []) == ["q1", "q2", "a1"]
