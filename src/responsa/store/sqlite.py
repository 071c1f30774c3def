"""SQLite store: one file, WAL, one connection owned by one thread.

Every store method is ONE hop to that thread, where it runs whole (a read,
or a ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction) as plain ``sqlite3``
calls. One thread serialises writes (SQLite allows a single writer anyway),
keeps the event loop free, and costs one thread switch per method instead of
one per statement.

Durability: ``synchronous=NORMAL`` (the default) makes every commit survive
a crash or ``kill -9`` of the server process; an OS crash or power loss may
roll back the last commits. ``sqlite:///file.db?synchronous=full`` fsyncs
every commit (about 3 ms each on a typical cloud disk) to survive that too;
PostgreSQL is the choice when it matters at scale.

Checkpoints (copying the WAL back into the database file, with an fsync)
run on a second connection and thread every ``CHECKPOINT_S`` instead of
inside whichever commit crosses SQLite's threshold: left automatic, they put
a 15-20 ms stall into one request in every few hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import orjson

from responsa.store import sql
from responsa.store.base import IdempotencyConflict, Item, Page

T = TypeVar("T")
CHECKPOINT_S = 1.0
Db = sqlite3.Connection


def _one(db: Db, query: str, params: tuple[Any, ...]) -> Any:
    row = db.execute(query, params).fetchone()
    return None if row is None else row[0]


def _json_or_none(raw: Any) -> Any:
    return None if raw is None else orjson.loads(raw)


def _append(db: Db, tenant: str, conversation_id: str, items: list[Item], response_id: str | None) -> bool:
    """Reserve ``len(items)`` positions and insert there; inside the caller's transaction."""
    row = db.execute(sql.RESERVE_POSITIONS, (len(items), tenant, conversation_id)).fetchone()
    if row is None:
        return False
    db.executemany(sql.INSERT_CONVERSATION_ITEM,
                   sql.conversation_item_rows(conversation_id, row[0] - len(items), items, response_id))
    return True


def _enable_wal(db: Db) -> None:
    """Switching a new file to WAL needs an exclusive lock, for which SQLite
    does not call the busy handler: replicas opening a fresh file together
    must retry themselves."""
    for _ in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    db.execute("PRAGMA journal_mode=WAL")


class SQLiteStore:
    def __init__(self, path: str, *, synchronous: Literal["normal", "full"] = "normal") -> None:
        self.path = path
        self.synchronous = synchronous
        self._db: Db | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-sqlite")
        self._checkpoints: asyncio.Task[None] | None = None

    async def _read(self, fn: Callable[[Db], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, fn)

    async def _write(self, fn: Callable[[Db], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, fn)

    def _call(self, fn: Callable[[Db], T]) -> T:
        if self._db is None:
            raise RuntimeError("store is not open")
        return fn(self._db)

    def _transaction(self, fn: Callable[[Db], T]) -> T:
        db = self._db
        if db is None:
            raise RuntimeError("store is not open")
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        db.execute("PRAGMA busy_timeout=5000")  # first: other processes may be opening the file too
        _enable_wal(db)
        db.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'full' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        self._db = db
        for version, script in sql.migrations():
            def migrate(db: Db, version: int = version, script: str = script) -> None:
                # Checked under the write lock: another process opening the
                # same file may have applied it while we waited.
                if _one(db, "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) is None:
                    for stmt in sql.split_statements(script):
                        db.execute(stmt)
                    db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))

            self._transaction(migrate)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._open)
        if self.path != ":memory:":
            self._checkpoints = asyncio.create_task(self._checkpoint_loop())

    async def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints never block the writer, which keeps appending
        to the WAL meanwhile; SQLite reuses the WAL from the start once it is
        fully checkpointed."""
        loop = asyncio.get_running_loop()
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-sqlite-checkpoint")
        db = await loop.run_in_executor(worker, lambda: sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0))
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_S)
                await loop.run_in_executor(worker, db.execute, "PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            await asyncio.shield(loop.run_in_executor(worker, db.close))
            worker.shutdown(wait=False)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None

        def shut() -> None:
            if self._db is not None:
                if self.path != ":memory:":
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)

    # -- responses -------------------------------------------------------------

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None,
                              lease: tuple[str, float] | None = None) -> None:
        def txn(db: Db) -> None:
            db.execute(sql.INSERT_RESPONSE, sql.response_row(tenant, response, request, idempotency_key))
            db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, response["id"], "input", input_items))
            if lease is not None:
                db.execute(sql.SET_LEASE, (*lease, tenant, response["id"]))

        try:
            await self._write(txn)
        except sqlite3.IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self._read(lambda db: _one(db, sql.BY_IDEMPOTENCY, (tenant, idempotency_key)))
            if existing is None:
                raise
            raise IdempotencyConflict(existing) from None

    async def record_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], conversation_items: list[Item] | None = None) -> None:
        rid = response["id"]

        def txn(db: Db) -> None:
            db.execute(sql.INSERT_RESPONSE, sql.response_row(tenant, response, request, None))
            db.executemany(sql.INSERT_ITEM, [*sql.item_rows(tenant, rid, "input", input_items),
                                             *sql.item_rows(tenant, rid, "output", response["output"])])
            if conversation_items and response.get("conversation_id"):
                _append(db, tenant, response["conversation_id"], conversation_items, rid)

        await self._write(txn)

    async def finish_response(self, tenant: str, response: dict[str, Any],
                              conversation_items: list[Item] | None = None, *, owner: str | None = None,
                              events: list[dict[str, Any]] | None = None) -> bool:
        rid = response["id"]
        row = (response["status"], sql.dumps(response), tenant, rid)

        def txn(db: Db) -> bool:
            cur = db.execute(sql.FINISH_RESPONSE, row) if owner is None else db.execute(sql.FINISH_JOB, (*row, owner))
            if cur.rowcount == 0:  # not this tenant's response (or no longer this owner's job): touch nothing
                return False
            db.execute(sql.DELETE_OUTPUT, (rid, tenant))
            db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, rid, "output", response["output"]))
            if conversation_items and response.get("conversation_id"):
                _append(db, tenant, response["conversation_id"], conversation_items, rid)
            if events:
                db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, events))
            return True

        return await self._write(txn)

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._read(lambda db: _one(db, sql.GET_RESPONSE, (tenant, response_id)))
        result: dict[str, Any] | None = _json_or_none(raw)
        return result

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        raw = await self._read(lambda db: _one(db, sql.GET_REQUEST, (tenant, response_id)))
        result: dict[str, Any] | None = _json_or_none(raw)
        return result

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        def txn(db: Db) -> bool:
            db.execute(sql.DELETE_ITEMS, (response_id, tenant))
            return db.execute(sql.DELETE_RESPONSE, (tenant, response_id)).rowcount > 0

        return await self._write(txn)

    async def load_context(self, tenant: str, response_id: str) -> list[Item] | None:
        def read(db: Db) -> list[Item] | None:
            rows = db.execute(sql.CHAIN_ITEMS, (tenant, response_id, tenant)).fetchall()
            if not rows and _one(db, sql.EXISTS, (tenant, response_id)) is None:
                return None
            return [orjson.loads(r[0]) for r in rows]

        return await self._read(read)

    async def get_items(self, tenant: str, item_ids: list[str]) -> dict[str, Item]:
        query = sql.ITEMS_BY_ID.format(marks=", ".join("?" * len(item_ids)))
        rows = await self._read(lambda db: db.execute(query, (tenant, *item_ids)).fetchall())
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def list_input_items(self, tenant: str, response_id: str, *, after: str | None,
                               before: str | None, limit: int,
                               order: Literal["asc", "desc"]) -> Page | None:
        def read(db: Db) -> list[tuple[int, str]] | None:
            if _one(db, sql.EXISTS, (tenant, response_id)) is None:
                return None
            return [(r[0], r[1]) for r in db.execute(sql.INPUT_ITEMS, (response_id, tenant)).fetchall()]

        rows = await self._read(read)
        if rows is None:
            return None
        result = sql.page(rows, after=after, before=before, limit=limit, order=order)
        return Page([], False) if result is None else Page(*result)

    # -- background jobs -------------------------------------------------------

    async def append_events(self, tenant: str, response_id: str, owner: str, events: list[dict[str, Any]], *,
                            response: dict[str, Any] | None = None) -> bool:
        state = (None, None) if response is None else (response["status"], sql.dumps(response))

        def txn(db: Db) -> bool:
            if db.execute(sql.TOUCH_JOB, (*state, tenant, response_id, owner)).rowcount == 0:
                return False
            db.executemany(sql.INSERT_EVENT, sql.event_rows(response_id, events))
            return True

        return await self._write(txn)

    async def get_events(self, tenant: str, response_id: str, after: int) -> list[dict[str, Any]]:
        rows = await self._read(lambda db: db.execute(sql.EVENTS_AFTER, (tenant, response_id, after)).fetchall())
        return [orjson.loads(r[0]) for r in rows]

    async def close_job(self, tenant: str, response: dict[str, Any], events: list[dict[str, Any]], *,
                        expired_before: float) -> list[dict[str, Any]] | None:
        rid = response["id"]

        def txn(db: Db) -> list[dict[str, Any]] | None:
            params = (response["status"], sql.dumps(response), tenant, rid, expired_before)
            if db.execute(sql.CLOSE_JOB, params).rowcount == 0:
                return None
            stored = sql.numbered(events, _one(db, sql.LAST_EVENT, (rid,)))
            db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, stored))
            return stored

        return await self._write(txn)

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        await self._write(lambda db: db.execute(sql.RENEW_LEASES, (expires_at, owner)))

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str]]:
        rows = await self._read(lambda db: db.execute(sql.EXPIRED_JOBS, (now, limit)).fetchall())
        return [(r[0], r[1], r[2]) for r in rows]

    async def claim_job(self, tenant: str, response_id: str, owner: str, now: float, expires_at: float) -> bool:
        params = (owner, expires_at, tenant, response_id, now)
        return await self._write(lambda db: db.execute(sql.CLAIM_JOB, params).rowcount > 0)

    # -- conversations ---------------------------------------------------------

    async def create_conversation(self, tenant: str, conversation: dict[str, Any], items: list[Item]) -> None:
        cid = conversation["id"]

        def txn(db: Db) -> None:
            db.execute(sql.INSERT_CONVERSATION, (tenant, cid, conversation["created_at"],
                                                 sql.dumps(conversation["metadata"])))
            if items:
                _append(db, tenant, cid, items, None)

        await self._write(txn)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        row = await self._read(lambda db: db.execute(sql.GET_CONVERSATION, (tenant, conversation_id)).fetchone())
        if row is None:
            return None
        return {"id": row[0], "object": "conversation", "created_at": row[1], "metadata": orjson.loads(row[2])}

    async def update_conversation(self, tenant: str, conversation_id: str,
                                  metadata: dict[str, str]) -> dict[str, Any] | None:
        await self._write(lambda db: db.execute(sql.UPDATE_CONVERSATION,
                                                (sql.dumps(metadata), tenant, conversation_id)))
        return await self.get_conversation(tenant, conversation_id)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        def txn(db: Db) -> bool:
            db.execute(sql.DELETE_CONVERSATION_ITEMS, (tenant, conversation_id))
            return db.execute(sql.DELETE_CONVERSATION, (tenant, conversation_id)).rowcount > 0

        return await self._write(txn)

    async def load_conversation(self, tenant: str, conversation_id: str) -> list[Item] | None:
        rows = await self._read(
            lambda db: db.execute(sql.CONVERSATION_CONTEXT, (tenant, conversation_id)).fetchall())
        if not rows:
            return None
        return [orjson.loads(r[0]) for r in rows if r[0] is not None]

    async def append_conversation_items(self, tenant: str, conversation_id: str, items: list[Item], *,
                                        response_id: str | None = None) -> bool:
        return await self._write(lambda db: _append(db, tenant, conversation_id, items, response_id))

    async def list_conversation_items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int,
                                      order: Literal["asc", "desc"]) -> Page | None:
        def read(db: Db) -> list[Any] | None:
            if db.execute(sql.GET_CONVERSATION, (tenant, conversation_id)).fetchone() is None:
                return None
            start = -1 if order == "asc" else 2**62
            if after is not None:
                start = _one(db, sql.CONVERSATION_ITEM_POSITION, (tenant, conversation_id, after))
                if start is None:
                    raise KeyError(after)
            query = sql.CONVERSATION_ITEMS_ASC if order == "asc" else sql.CONVERSATION_ITEMS_DESC
            return db.execute(query, (conversation_id, start, limit + 1)).fetchall()

        rows = await self._read(read)
        if rows is None:
            return None
        return Page([orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit)

    async def get_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> Item | None:
        raw = await self._read(lambda db: _one(db, sql.GET_CONVERSATION_ITEM, (tenant, conversation_id, item_id)))
        result: Item | None = _json_or_none(raw)
        return result

    async def delete_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> bool:
        params = (tenant, conversation_id, item_id)
        return await self._write(lambda db: db.execute(sql.DELETE_CONVERSATION_ITEM, params).rowcount > 0)

    # -- prompts ---------------------------------------------------------------

    async def create_prompt(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        stored = {**prompt, "version": "1"}

        def txn(db: Db) -> dict[str, Any] | None:
            if db.execute(sql.PROMPT_OWNER, (tenant, prompt["id"])).fetchone() is not None:
                return None
            db.execute(sql.INSERT_PROMPT, (tenant, prompt["id"], prompt["created_at"]))
            db.execute(sql.INSERT_PROMPT_VERSION, (tenant, prompt["id"], 1, sql.dumps(stored)))
            return stored

        return await self._write(txn)

    async def add_prompt_version(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        def txn(db: Db) -> dict[str, Any] | None:
            version = _one(db, sql.NEXT_PROMPT_VERSION, (tenant, prompt["id"]))
            if version is None:
                return None
            stored = {**prompt, "version": str(version)}
            db.execute(sql.INSERT_PROMPT_VERSION, (tenant, prompt["id"], version, sql.dumps(stored)))
            return stored

        return await self._write(txn)

    async def get_prompt(self, tenant: str, prompt_id: str, version: int | None = None) -> dict[str, Any] | None:
        raw = await self._read(lambda db: _one(db, sql.GET_PROMPT_VERSION, (tenant, prompt_id, version)))
        result: dict[str, Any] | None = _json_or_none(raw)
        return result

    async def prompt_owner(self, tenant: str, prompt_id: str) -> str | None:
        owner: str | None = await self._read(lambda db: _one(db, sql.PROMPT_OWNER, (tenant, prompt_id)))
        return owner

    async def list_prompts(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._read(lambda db: db.execute(sql.LATEST_PROMPTS, (tenant,)).fetchall())
        return [orjson.loads(r[0]) for r in rows]

    async def list_prompt_versions(self, tenant: str, prompt_id: str) -> list[dict[str, Any]]:
        def read(db: Db) -> list[Any]:
            owner = _one(db, sql.PROMPT_OWNER, (tenant, prompt_id))
            return [] if owner is None else db.execute(sql.PROMPT_VERSIONS, (owner, prompt_id)).fetchall()

        return [orjson.loads(r[0]) for r in await self._read(read)]

    async def delete_prompt(self, tenant: str, prompt_id: str) -> bool:
        def txn(db: Db) -> bool:
            db.execute(sql.DELETE_PROMPT_VERSIONS, (tenant, prompt_id))
            return db.execute(sql.DELETE_PROMPT, (tenant, prompt_id)).rowcount > 0

        return await self._write(txn)

    async def server_secret(self, name: str) -> str:
        def txn(db: Db) -> str:
            db.execute(sql.INSERT_SECRET, (name, secrets.token_hex(32)))
            value: str = _one(db, sql.GET_SECRET, (name,))
            return value

        return await self._write(txn)
