"""SQLite store: one file, WAL, one connection on its own thread.

A single connection serialises writes (SQLite allows one writer anyway) and
keeps every statement off the event loop. ``synchronous=FULL`` makes each
acknowledged write durable across power loss, not just process crashes.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import aiosqlite
import orjson

from responsa.store import sql
from responsa.store.base import IdempotencyConflict, Item, Page


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()

    async def _migrate(self) -> None:
        db = self.db
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        async with db.execute("SELECT version FROM schema_migrations") as cur:
            done = {row[0] for row in await cur.fetchall()}
        for version, script in sql.migrations():
            if version in done:
                continue
            await db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in sql.split_statements(script):
                    await db.execute(stmt)
                await db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None) -> None:
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(sql.INSERT_RESPONSE, sql.response_row(tenant, response, request, idempotency_key))
            await db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, response["id"], "input", input_items))
            await db.execute("COMMIT")
        except sqlite3.IntegrityError:
            await db.execute("ROLLBACK")
            if idempotency_key is None:
                raise
            async with db.execute(sql.BY_IDEMPOTENCY, (tenant, idempotency_key)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise
            raise IdempotencyConflict(row[0]) from None
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def finish_response(self, tenant: str, response: dict[str, Any]) -> None:
        db = self.db
        rid = response["id"]
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(sql.FINISH_RESPONSE, (response["status"], sql.dumps(response), tenant, rid))
            await db.execute(sql.DELETE_OUTPUT, (rid,))
            await db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, rid, "output", response["output"]))
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def _one(self, query: str, params: tuple[Any, ...]) -> Any:
        async with self.db.execute(query, params) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_RESPONSE, (tenant, response_id))
        return None if raw is None else orjson.loads(raw)

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_REQUEST, (tenant, response_id))
        return None if raw is None else orjson.loads(raw)

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(sql.DELETE_ITEMS, (response_id, tenant))
            cur = await db.execute(sql.DELETE_RESPONSE, (tenant, response_id))
            deleted = cur.rowcount > 0
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        return deleted

    async def load_context(self, tenant: str, response_id: str) -> list[Item] | None:
        async with self.db.execute(sql.CHAIN_ITEMS, (tenant, response_id, tenant)) as cur:
            rows = await cur.fetchall()
        if not rows and await self._one(sql.EXISTS, (tenant, response_id)) is None:
            return None
        return [orjson.loads(r[0]) for r in rows]

    async def get_items(self, tenant: str, item_ids: list[str]) -> dict[str, Item]:
        query = sql.ITEMS_BY_ID.format(marks=", ".join("?" * len(item_ids)))
        async with self.db.execute(query, (tenant, *item_ids)) as cur:
            rows = await cur.fetchall()
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def list_input_items(self, tenant: str, response_id: str, *, after: str | None,
                               before: str | None, limit: int,
                               order: Literal["asc", "desc"]) -> Page | None:
        if await self._one(sql.EXISTS, (tenant, response_id)) is None:
            return None
        async with self.db.execute(sql.INPUT_ITEMS, (response_id, tenant)) as cur:
            rows = [(r[0], r[1]) for r in await cur.fetchall()]
        result = sql.page(rows, after=after, before=before, limit=limit, order=order)
        return Page([], False) if result is None else Page(*result)
