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


class PostgresStore:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self._min_size, max_size=self._max_size)
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
                              input_items: list[Item], *, idempotency_key: str | None = None) -> None:
        try:
            async with self._tx() as conn:
                await conn.execute(pg(sql.INSERT_RESPONSE), *sql.response_row(tenant, response, request,
                                                                                idempotency_key))
                await conn.executemany(pg(sql.INSERT_ITEM), sql.item_rows(tenant, response["id"], "input",
                                                                          input_items))
        except asyncpg.UniqueViolationError:
            if idempotency_key is None:
                raise
            earlier = await self._one(sql.BY_IDEMPOTENCY, tenant, idempotency_key)
            if earlier is None:
                raise
            raise IdempotencyConflict(earlier) from None

    async def finish_response(self, tenant: str, response: dict[str, Any]) -> None:
        rid = response["id"]
        async with self._tx() as conn:
            await conn.execute(pg(sql.FINISH_RESPONSE), response["status"], sql.dumps(response), tenant, rid)
            await conn.execute(pg(sql.DELETE_OUTPUT), rid)
            await conn.executemany(pg(sql.INSERT_ITEM), sql.item_rows(tenant, rid, "output", response["output"]))

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_RESPONSE, tenant, response_id)
        return None if raw is None else orjson.loads(raw)

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_REQUEST, tenant, response_id)
        return None if raw is None else orjson.loads(raw)

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute(pg(sql.DELETE_ITEMS), response_id, tenant)
            status: str = await conn.execute(pg(sql.DELETE_RESPONSE), tenant, response_id)
        return status != "DELETE 0"

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
