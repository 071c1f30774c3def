"""PostgreSQL store: the system of record when several replicas serve together.

Same schema, same SQL (``store/sql.py``) and same migrations as SQLite; only
the placeholders are renumbered and the serialisation points differ: where
SQLite takes its one write lock (``BEGIN IMMEDIATE``), PostgreSQL locks the
parent row (``SELECT ... FOR UPDATE``) or claims with ``SKIP LOCKED``, so
replicas only ever wait on each other for the rows they actually share.
Every write is one transaction committed before the call returns (PostgreSQL's
default ``synchronous_commit=on``), so anything acknowledged is durable.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from responsa.store import sql
from responsa.store.base import IdempotencyConflict, Item, Page

# One lock per schema, so replicas that start together migrate one after
# the other while unrelated schemas (tests, tenants' own deployments) don't wait.
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('responsa.migrations.' || current_schema()))"


@functools.lru_cache(maxsize=512)
def pg(query: str) -> str:
    """``?`` placeholders -> ``$1..$n`` (outside string literals), cached so
    each shared SQL string is translated once."""
    out: list[str] = []
    n = 0
    quoted = False
    for ch in query:
        if ch == "'":
            quoted = not quoted
        elif ch == "?" and not quoted:
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


# PostgreSQL's form of ``sql.CLAIM_JOB``: a job whose row another replica
# holds locked (claiming or closing it right now) is skipped, not waited for.
# The plain conditional UPDATE is just as safe, but would queue every
# sweeper on that row lock only to find the job taken.
_CLAIM_JOB = pg(
    "UPDATE responses SET lease_owner = ?, lease_expires_at = ? WHERE id = ("
    "SELECT id FROM responses WHERE tenant = ? AND id = ? AND status = 'queued' AND lease_expires_at < ? "
    "FOR UPDATE SKIP LOCKED)")


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``UPDATE 1``."""
    return int(status.rsplit(" ", 1)[-1])


async def _append(conn: PoolConnectionProxy[Any], tenant: str, conversation_id: str, items: list[Item],
                  response_id: str | None) -> bool:
    """Reserve ``len(items)`` positions and insert there, inside the caller's
    transaction: the counter's ``UPDATE ... RETURNING`` holds the
    conversation's row lock until commit, so concurrent appenders (on any
    replica) queue on that one row and their items never interleave."""
    end = await conn.fetchval(pg(sql.RESERVE_POSITIONS), len(items), tenant, conversation_id)
    if end is None:
        return False
    rows = sql.conversation_item_rows(conversation_id, end - len(items), items, response_id)
    await conn.executemany(pg(sql.INSERT_CONVERSATION_ITEM), rows)
    return True


class PostgresStore:
    def __init__(self, url: str, **pool_options: Any) -> None:
        """``pool_options`` go to ``asyncpg.create_pool`` (sizes, ``ssl``,
        ``statement_cache_size=0`` behind PgBouncer, a ``setup`` hook)."""
        self.url = url
        self._pool_options = {"min_size": 1, "max_size": 10, **pool_options}
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, **self._pool_options)
        await self._migrate()

    async def _migrate(self) -> None:
        """Each pending migration in its own transaction, under a lock held
        until that transaction ends, re-reading what is applied once the lock
        is ours: the loser of a start-up race finds the work done."""
        async with self.pool.acquire() as conn:
            for version, script in sql.migrations():
                async with conn.transaction():
                    await conn.execute(_MIGRATION_LOCK)
                    await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                    if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                        continue
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def _one(self, query: str, *params: Any) -> Any:
        return await self.pool.fetchval(pg(query), *params)

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None,
                              lease: tuple[str, float] | None = None) -> None:
        try:
            async with self._tx() as conn:
                await conn.execute(pg(sql.INSERT_RESPONSE), *sql.response_row(tenant, response, request,
                                                                                idempotency_key))
                await conn.executemany(pg(sql.INSERT_ITEM), sql.item_rows(tenant, response["id"], "input",
                                                                          input_items))
                if lease is not None:
                    await conn.execute(pg(sql.SET_LEASE), *lease, tenant, response["id"])
        except asyncpg.UniqueViolationError:
            if idempotency_key is None:
                raise
            earlier = await self._one(sql.BY_IDEMPOTENCY, tenant, idempotency_key)
            if earlier is None:
                raise
            raise IdempotencyConflict(earlier) from None

    async def record_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], conversation_items: list[Item] | None = None) -> None:
        rid = response["id"]
        async with self._tx() as conn:
            await conn.execute(pg(sql.INSERT_RESPONSE), *sql.response_row(tenant, response, request, None))
            await conn.executemany(pg(sql.INSERT_ITEM), [*sql.item_rows(tenant, rid, "input", input_items),
                                                         *sql.item_rows(tenant, rid, "output", response["output"])])
            if conversation_items and response.get("conversation_id"):
                await _append(conn, tenant, response["conversation_id"], conversation_items, rid)

    async def finish_response(self, tenant: str, response: dict[str, Any],
                              conversation_items: list[Item] | None = None, *, owner: str | None = None,
                              events: list[dict[str, Any]] | None = None) -> bool:
        rid = response["id"]
        async with self._tx() as conn:
            row = (response["status"], sql.dumps(response), tenant, rid)
            if owner is None:
                updated = await conn.execute(pg(sql.FINISH_RESPONSE), *row)
            else:
                updated = await conn.execute(pg(sql.FINISH_JOB), *row, owner)
            if _count(updated) == 0:  # not this tenant's response (or no longer this owner's job): touch nothing
                return False
            await conn.execute(pg(sql.DELETE_OUTPUT), rid, tenant)
            await conn.executemany(pg(sql.INSERT_ITEM), sql.item_rows(tenant, rid, "output", response["output"]))
            if conversation_items and response.get("conversation_id"):
                await _append(conn, tenant, response["conversation_id"], conversation_items, rid)
            if events:
                await conn.executemany(pg(sql.INSERT_EVENT), sql.event_rows(rid, events))
        return True

    async def append_events(self, tenant: str, response_id: str, owner: str, events: list[dict[str, Any]], *,
                            response: dict[str, Any] | None = None) -> bool:
        state = (None, None) if response is None else (response["status"], sql.dumps(response))
        async with self._tx() as conn:
            if _count(await conn.execute(pg(sql.TOUCH_JOB), *state, tenant, response_id, owner)) == 0:
                return False
            await conn.executemany(pg(sql.INSERT_EVENT), sql.event_rows(response_id, events))
        return True

    async def get_events(self, tenant: str, response_id: str, after: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(pg(sql.EVENTS_AFTER), tenant, response_id, after)
        return [orjson.loads(r[0]) for r in rows]

    async def close_job(self, tenant: str, response: dict[str, Any], events: list[dict[str, Any]], *,
                        expired_before: float) -> list[dict[str, Any]] | None:
        rid = response["id"]
        async with self._tx() as conn:
            # The UPDATE locks the row, and every runner write updates the row
            # first, so the last sequence number cannot move under us.
            closed = await conn.execute(pg(sql.CLOSE_JOB), response["status"], sql.dumps(response), tenant, rid,
                                        expired_before)
            if _count(closed) == 0:
                return None
            stored = sql.numbered(events, await conn.fetchval(pg(sql.LAST_EVENT), rid))
            await conn.executemany(pg(sql.INSERT_EVENT), sql.event_rows(rid, stored))
        return stored

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        await self.pool.execute(pg(sql.RENEW_LEASES), expires_at, owner)

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str]]:
        rows = await self.pool.fetch(pg(sql.EXPIRED_JOBS), now, limit)
        return [(r[0], r[1], r[2]) for r in rows]

    async def claim_job(self, tenant: str, response_id: str, owner: str, now: float, expires_at: float) -> bool:
        return _count(await self.pool.execute(_CLAIM_JOB, owner, expires_at, tenant, response_id, now)) > 0

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_RESPONSE, tenant, response_id)
        return None if raw is None else orjson.loads(raw)

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_REQUEST, tenant, response_id)
        return None if raw is None else orjson.loads(raw)

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute(pg(sql.DELETE_ITEMS), response_id, tenant)
            deleted = await conn.execute(pg(sql.DELETE_RESPONSE), tenant, response_id)
        return _count(deleted) > 0

    async def load_context(self, tenant: str, response_id: str) -> list[Item] | None:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(pg(sql.CHAIN_ITEMS), tenant, response_id, tenant)
            if not rows and await conn.fetchval(pg(sql.EXISTS), tenant, response_id) is None:
                return None
        return [orjson.loads(r[0]) for r in rows]

    async def get_items(self, tenant: str, item_ids: list[str]) -> dict[str, Item]:
        if not item_ids:
            return {}
        query = sql.ITEMS_BY_ID.format(marks=", ".join("?" * len(item_ids)))
        rows = await self.pool.fetch(pg(query), tenant, *item_ids)
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def list_input_items(self, tenant: str, response_id: str, *, after: str | None,
                               before: str | None, limit: int,
                               order: Literal["asc", "desc"]) -> Page | None:
        async with self.pool.acquire() as conn:
            if await conn.fetchval(pg(sql.EXISTS), tenant, response_id) is None:
                return None
            rows = [(r[0], r[1]) for r in await conn.fetch(pg(sql.INPUT_ITEMS), response_id, tenant)]
        result = sql.page(rows, after=after, before=before, limit=limit, order=order)
        return Page([], False) if result is None else Page(*result)

    async def create_conversation(self, tenant: str, conversation: dict[str, Any], items: list[Item]) -> None:
        cid = conversation["id"]
        async with self._tx() as conn:
            await conn.execute(pg(sql.INSERT_CONVERSATION), tenant, cid, conversation["created_at"],
                               sql.dumps(conversation["metadata"]))
            if items:
                await _append(conn, tenant, cid, items, None)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(pg(sql.GET_CONVERSATION), tenant, conversation_id)
        if row is None:
            return None
        return {"id": row[0], "object": "conversation", "created_at": row[1], "metadata": orjson.loads(row[2])}

    async def update_conversation(self, tenant: str, conversation_id: str,
                                  metadata: dict[str, str]) -> dict[str, Any] | None:
        await self.pool.execute(pg(sql.UPDATE_CONVERSATION), sql.dumps(metadata), tenant, conversation_id)
        return await self.get_conversation(tenant, conversation_id)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute(pg(sql.DELETE_CONVERSATION_ITEMS), tenant, conversation_id)
            return _count(await conn.execute(pg(sql.DELETE_CONVERSATION), tenant, conversation_id)) > 0

    async def load_conversation(self, tenant: str, conversation_id: str) -> list[Item] | None:
        rows = await self.pool.fetch(pg(sql.CONVERSATION_CONTEXT), tenant, conversation_id)
        if not rows:
            return None
        return [orjson.loads(r[0]) for r in rows if r[0] is not None]

    async def append_conversation_items(self, tenant: str, conversation_id: str, items: list[Item], *,
                                        response_id: str | None = None) -> bool:
        async with self._tx() as conn:
            return await _append(conn, tenant, conversation_id, items, response_id)

    async def list_conversation_items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int,
                                      order: Literal["asc", "desc"]) -> Page | None:
        async with self.pool.acquire() as conn:
            if await conn.fetchval(pg(sql.GET_CONVERSATION), tenant, conversation_id) is None:
                return None
            start = -1 if order == "asc" else 2**62
            if after is not None:
                start = await conn.fetchval(pg(sql.CONVERSATION_ITEM_POSITION), tenant, conversation_id, after)
                if start is None:
                    raise KeyError(after)
            query = sql.CONVERSATION_ITEMS_ASC if order == "asc" else sql.CONVERSATION_ITEMS_DESC
            rows = await conn.fetch(pg(query), conversation_id, start, limit + 1)
        return Page([orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit)

    async def get_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> Item | None:
        raw = await self._one(sql.GET_CONVERSATION_ITEM, tenant, conversation_id, item_id)
        return None if raw is None else orjson.loads(raw)

    async def delete_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> bool:
        return _count(await self.pool.execute(pg(sql.DELETE_CONVERSATION_ITEM), tenant, conversation_id,
                                              item_id)) > 0

    async def create_prompt(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        stored = {**prompt, "version": "1"}
        try:
            async with self._tx() as conn:
                if await conn.fetchval(pg(sql.PROMPT_OWNER), tenant, prompt["id"]) is not None:
                    return None
                await conn.execute(pg(sql.INSERT_PROMPT), tenant, prompt["id"], prompt["created_at"])
                await conn.execute(pg(sql.INSERT_PROMPT_VERSION), tenant, prompt["id"], 1, sql.dumps(stored))
        except asyncpg.UniqueViolationError:  # a concurrent create of the same id won
            return None
        return stored

    async def add_prompt_version(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        async with self._tx() as conn:
            version = await conn.fetchval(pg(sql.NEXT_PROMPT_VERSION), tenant, prompt["id"])
            if version is None:
                return None
            stored = {**prompt, "version": str(version)}
            await conn.execute(pg(sql.INSERT_PROMPT_VERSION), tenant, prompt["id"], version, sql.dumps(stored))
        return stored

    async def get_prompt(self, tenant: str, prompt_id: str, version: int | None = None) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_PROMPT_VERSION, tenant, prompt_id, version)
        return None if raw is None else orjson.loads(raw)

    async def prompt_owner(self, tenant: str, prompt_id: str) -> str | None:
        owner: str | None = await self._one(sql.PROMPT_OWNER, tenant, prompt_id)
        return owner

    async def list_prompts(self, tenant: str) -> list[dict[str, Any]]:
        return [orjson.loads(r[0]) for r in await self.pool.fetch(pg(sql.LATEST_PROMPTS), tenant)]

    async def list_prompt_versions(self, tenant: str, prompt_id: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            owner = await conn.fetchval(pg(sql.PROMPT_OWNER), tenant, prompt_id)
            if owner is None:
                return []
            return [orjson.loads(r[0]) for r in await conn.fetch(pg(sql.PROMPT_VERSIONS), owner, prompt_id)]

    async def delete_prompt(self, tenant: str, prompt_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute(pg(sql.DELETE_PROMPT_VERSIONS), tenant, prompt_id)
            return _count(await conn.execute(pg(sql.DELETE_PROMPT), tenant, prompt_id)) > 0

    async def server_secret(self, name: str) -> str:
        async with self._tx() as conn:
            await conn.execute(pg(sql.INSERT_SECRET), name, secrets.token_hex(32))
            value: str = await conn.fetchval(pg(sql.GET_SECRET), name)
        return value
