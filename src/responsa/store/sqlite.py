"""SQLite store: one file, WAL, one connection on its own thread.

A single connection serialises writes (SQLite allows one writer anyway) and
keeps every statement off the event loop. ``synchronous=FULL`` makes each
acknowledged write durable across power loss, not just process crashes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiosqlite
import orjson

from responsa.store import sql
from responsa.store.base import IdempotencyConflict, Item, Page


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

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
        for version, script in sql.migrations():
            await db.execute("BEGIN IMMEDIATE")
            try:
                # Checked under the write lock: another process opening the
                # same file may have applied it while we waited.
                async with db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cur:
                    if await cur.fetchone() is not None:
                        await db.execute("COMMIT")
                        continue
                for stmt in sql.split_statements(script):
                    await db.execute(stmt)
                await db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time: every coroutine shares the one
        connection, so without the lock a second ``BEGIN`` would land inside
        the first transaction (and its statements would commit with it)."""
        async with self._write_lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None,
                              lease: tuple[str, float] | None = None) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(sql.INSERT_RESPONSE, sql.response_row(tenant, response, request, idempotency_key))
                await db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, response["id"], "input", input_items))
                if lease is not None:
                    await db.execute(sql.SET_LEASE, (*lease, tenant, response["id"]))
        except sqlite3.IntegrityError:
            if idempotency_key is None:
                raise
            async with self.db.execute(sql.BY_IDEMPOTENCY, (tenant, idempotency_key)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise
            raise IdempotencyConflict(row[0]) from None

    async def finish_response(self, tenant: str, response: dict[str, Any],
                              conversation_items: list[Item] | None = None, *, owner: str | None = None,
                              events: list[dict[str, Any]] | None = None) -> bool:
        rid = response["id"]
        async with self._transaction() as db:
            row = (response["status"], sql.dumps(response), tenant, rid)
            if owner is None:
                cur = await db.execute(sql.FINISH_RESPONSE, row)
            else:
                cur = await db.execute(sql.FINISH_JOB, (*row, owner))
            if cur.rowcount == 0:  # not this tenant's response (or no longer this owner's job): touch nothing
                return False
            await db.execute(sql.DELETE_OUTPUT, (rid, tenant))
            await db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, rid, "output", response["output"]))
            if conversation_items and response.get("conversation_id"):
                await self._append(db, tenant, response["conversation_id"], conversation_items, rid)
            if events:
                await db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, events))
        return True

    async def append_events(self, tenant: str, response_id: str, owner: str, events: list[dict[str, Any]], *,
                            response: dict[str, Any] | None = None) -> bool:
        state = (None, None) if response is None else (response["status"], sql.dumps(response))
        async with self._transaction() as db:
            cur = await db.execute(sql.TOUCH_JOB, (*state, tenant, response_id, owner))
            if cur.rowcount == 0:
                return False
            await db.executemany(sql.INSERT_EVENT, sql.event_rows(response_id, events))
        return True

    async def get_events(self, tenant: str, response_id: str, after: int) -> list[dict[str, Any]]:
        async with self.db.execute(sql.EVENTS_AFTER, (tenant, response_id, after)) as cur:
            return [orjson.loads(r[0]) for r in await cur.fetchall()]

    async def close_job(self, tenant: str, response: dict[str, Any], events: list[dict[str, Any]], *,
                        expired_before: float) -> list[dict[str, Any]] | None:
        rid = response["id"]
        async with self._transaction() as db:
            cur = await db.execute(sql.CLOSE_JOB, (response["status"], sql.dumps(response), tenant, rid,
                                                   expired_before))
            if cur.rowcount == 0:
                return None
            async with db.execute(sql.LAST_EVENT, (rid,)) as last:
                row = await last.fetchone()
            stored = sql.numbered(events, None if row is None else row[0])
            await db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, stored))
        return stored

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        async with self._transaction() as db:
            await db.execute(sql.RENEW_LEASES, (expires_at, owner))

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str]]:
        async with self.db.execute(sql.EXPIRED_JOBS, (now, limit)) as cur:
            return [(r[0], r[1], r[2]) for r in await cur.fetchall()]

    async def claim_job(self, tenant: str, response_id: str, owner: str, now: float, expires_at: float) -> bool:
        async with self._transaction() as db:
            cur = await db.execute(sql.CLAIM_JOB, (owner, expires_at, tenant, response_id, now))
            return cur.rowcount > 0

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
        async with self._transaction() as db:
            await db.execute(sql.DELETE_ITEMS, (response_id, tenant))
            cur = await db.execute(sql.DELETE_RESPONSE, (tenant, response_id))
            deleted = cur.rowcount > 0
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

    @staticmethod
    async def _append(db: aiosqlite.Connection, tenant: str, conversation_id: str, items: list[Item],
                      response_id: str | None) -> bool:
        """Reserve ``len(items)`` positions and insert there; inside the caller's transaction."""
        async with db.execute(sql.RESERVE_POSITIONS, (len(items), tenant, conversation_id)) as cur:
            row = await cur.fetchone()
        if row is None:
            return False
        rows = sql.conversation_item_rows(conversation_id, row[0] - len(items), items, response_id)
        await db.executemany(sql.INSERT_CONVERSATION_ITEM, rows)
        return True

    async def create_conversation(self, tenant: str, conversation: dict[str, Any], items: list[Item]) -> None:
        cid = conversation["id"]
        async with self._transaction() as db:
            await db.execute(sql.INSERT_CONVERSATION, (tenant, cid, conversation["created_at"],
                                                       sql.dumps(conversation["metadata"])))
            if items:
                await self._append(db, tenant, cid, items, None)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        async with self.db.execute(sql.GET_CONVERSATION, (tenant, conversation_id)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return {"id": row[0], "object": "conversation", "created_at": row[1], "metadata": orjson.loads(row[2])}

    async def update_conversation(self, tenant: str, conversation_id: str,
                                  metadata: dict[str, str]) -> dict[str, Any] | None:
        async with self._transaction() as db:
            await db.execute(sql.UPDATE_CONVERSATION, (sql.dumps(metadata), tenant, conversation_id))
        return await self.get_conversation(tenant, conversation_id)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        async with self._transaction() as db:
            await db.execute(sql.DELETE_CONVERSATION_ITEMS, (tenant, conversation_id))
            cur = await db.execute(sql.DELETE_CONVERSATION, (tenant, conversation_id))
            return cur.rowcount > 0

    async def load_conversation(self, tenant: str, conversation_id: str) -> list[Item] | None:
        async with self.db.execute(sql.CONVERSATION_CONTEXT, (tenant, conversation_id)) as cur:
            rows = await cur.fetchall()
        if not rows:
            return None
        return [orjson.loads(r[0]) for r in rows if r[0] is not None]

    async def append_conversation_items(self, tenant: str, conversation_id: str, items: list[Item], *,
                                        response_id: str | None = None) -> bool:
        async with self._transaction() as db:
            return await self._append(db, tenant, conversation_id, items, response_id)

    async def list_conversation_items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int,
                                      order: Literal["asc", "desc"]) -> Page | None:
        if await self.get_conversation(tenant, conversation_id) is None:
            return None
        start = -1 if order == "asc" else 2**62
        if after is not None:
            start = await self._one(sql.CONVERSATION_ITEM_POSITION, (tenant, conversation_id, after))
            if start is None:
                raise KeyError(after)
        query = sql.CONVERSATION_ITEMS_ASC if order == "asc" else sql.CONVERSATION_ITEMS_DESC
        async with self.db.execute(query, (conversation_id, start, limit + 1)) as cur:
            rows = list(await cur.fetchall())
        return Page([orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit)

    async def get_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> Item | None:
        raw = await self._one(sql.GET_CONVERSATION_ITEM, (tenant, conversation_id, item_id))
        return None if raw is None else orjson.loads(raw)

    async def delete_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> bool:
        async with self._transaction() as db:
            cur = await db.execute(sql.DELETE_CONVERSATION_ITEM, (tenant, conversation_id, item_id))
            return cur.rowcount > 0

    async def create_prompt(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        stored = {**prompt, "version": "1"}
        async with self._transaction() as db:
            async with db.execute(sql.PROMPT_OWNER, (tenant, prompt["id"])) as cur:
                if await cur.fetchone() is not None:
                    return None
            await db.execute(sql.INSERT_PROMPT, (tenant, prompt["id"], prompt["created_at"]))
            await db.execute(sql.INSERT_PROMPT_VERSION, (tenant, prompt["id"], 1, sql.dumps(stored)))
        return stored

    async def add_prompt_version(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        async with self._transaction() as db:
            async with db.execute(sql.NEXT_PROMPT_VERSION, (tenant, prompt["id"])) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            stored = {**prompt, "version": str(row[0])}
            await db.execute(sql.INSERT_PROMPT_VERSION, (tenant, prompt["id"], row[0], sql.dumps(stored)))
        return stored

    async def get_prompt(self, tenant: str, prompt_id: str, version: int | None = None) -> dict[str, Any] | None:
        raw = await self._one(sql.GET_PROMPT_VERSION, (tenant, prompt_id, version))
        return None if raw is None else orjson.loads(raw)

    async def prompt_owner(self, tenant: str, prompt_id: str) -> str | None:
        owner: str | None = await self._one(sql.PROMPT_OWNER, (tenant, prompt_id))
        return owner

    async def list_prompts(self, tenant: str) -> list[dict[str, Any]]:
        async with self.db.execute(sql.LATEST_PROMPTS, (tenant,)) as cur:
            return [orjson.loads(r[0]) for r in await cur.fetchall()]

    async def list_prompt_versions(self, tenant: str, prompt_id: str) -> list[dict[str, Any]]:
        owner = await self.prompt_owner(tenant, prompt_id)
        if owner is None:
            return []
        async with self.db.execute(sql.PROMPT_VERSIONS, (owner, prompt_id)) as cur:
            return [orjson.loads(r[0]) for r in await cur.fetchall()]

    async def delete_prompt(self, tenant: str, prompt_id: str) -> bool:
        async with self._transaction() as db:
            await db.execute(sql.DELETE_PROMPT_VERSIONS, (tenant, prompt_id))
            cur = await db.execute(sql.DELETE_PROMPT, (tenant, prompt_id))
            return cur.rowcount > 0
