"""Every store operation, written once: ``SQLStore`` implements the ``Store``
contract as statement sequences over a ``Driver`` (``driver.py``), which the
SQLite and PostgreSQL stores provide. Which statements run, in which
transaction, and what their results mean is decided here and only here; the
drivers hold connection, transaction and dialect code.

Each method is one ``Driver.read`` or ``Driver.write`` (one transaction), so
one SQLite thread hop or one pooled PostgreSQL connection, except where
noted (an idempotency conflict looks the winner up afterwards).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from responsa.store import files, listing, paging, sql
from responsa.store.base import IdempotencyConflict, Item, Page, UnknownCursor
from responsa.store.driver import Conn, Driver, DuplicateKey, Row
from responsa.store.parsed import ParsedHops


def _json_or_none(raw: Any) -> Any:
    return None if raw is None else orjson.loads(raw)


def _conversation(row: Row) -> dict[str, Any]:
    return {"id": row[0], "object": "conversation", "created_at": row[1], "metadata": orjson.loads(row[2])}


async def _append(db: Conn, tenant: str, conversation_id: str, items: list[Item], response_id: str | None) -> bool:
    """Reserve ``len(items)`` positions and insert there, inside the caller's
    transaction. The counter's ``UPDATE ... RETURNING`` takes the
    conversation's row lock until commit on PostgreSQL (SQLite's transaction
    holds its one write lock), so concurrent appenders on any replica queue
    on that one row and their items never interleave. ``False`` if the
    conversation does not exist for this tenant."""
    end = await db.fetchval(sql.RESERVE_POSITIONS, len(items), tenant, conversation_id)
    if end is None:
        return False
    await db.executemany(sql.INSERT_CONVERSATION_ITEM,
                         sql.conversation_item_rows(conversation_id, end - len(items), items, response_id))
    return True


async def _store_output(db: Conn, tenant: str, response: dict[str, Any], conversation_items: list[Item] | None,
                        events: list[dict[str, Any]] | None, input_items: list[Item] | None = None) -> None:
    """The writes that finish a response once its row is in its final state:
    its output items (and ``input_items`` if new, in the same batch), the
    conversation's new items (if the conversation still exists) and the last
    events."""
    rid = response["id"]
    rows = sql.item_rows(tenant, rid, "output", response["output"])
    if input_items:
        rows = [*sql.item_rows(tenant, rid, "input", input_items), *rows]
    await db.executemany(sql.INSERT_ITEM, rows)
    if conversation_items and response.get("conversation_id"):
        await _append(db, tenant, response["conversation_id"], conversation_items, rid)
    if events:
        await db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, events))


class SQLStore:
    """The ``Store`` over any ``Driver``; see ``sqlite.py`` and ``postgres.py``."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._parsed = ParsedHops()
        """Finished responses' items, parsed once (``load_context``)."""

    async def open(self) -> None:
        """Connect, then apply each pending migration in its own transaction,
        re-checking under the migration lock that it is still pending: of
        replicas starting together, the loser of the race finds the work done."""
        await self.driver.open()
        lock = self.driver.dialect.migration_lock
        for version, script in sql.migrations(self.driver.dialect.name):
            async def migrate(db: Conn, version: int = version, script: str = script) -> None:
                if lock is not None:
                    await db.execute(lock)
                await db.execute(sql.CREATE_MIGRATIONS)
                if await db.fetchval(sql.MIGRATION_APPLIED, version) is not None:
                    return
                for statement in sql.split_statements(script):
                    await db.execute(statement)
                await db.execute(sql.RECORD_MIGRATION, version)

            await self.driver.write(migrate)

    async def close(self) -> None:
        await self.driver.close()

    # -- responses -------------------------------------------------------------

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None,
                              lease: tuple[str, float] | None = None) -> None:
        rid = response["id"]

        async def txn(db: Conn) -> None:
            await db.execute(sql.INSERT_RESPONSE, *sql.response_row(tenant, response, request, idempotency_key,
                                                                    lease))
            await db.executemany(sql.INSERT_ITEM, sql.item_rows(tenant, rid, "input", input_items))

        try:
            await self.driver.write(txn, small=True)
        except DuplicateKey:
            if idempotency_key is None:
                raise
            earlier = await self.driver.read(lambda db: db.fetchval(sql.BY_IDEMPOTENCY, tenant, idempotency_key))
            if earlier is None:  # the id itself was taken, not the key
                raise
            raise IdempotencyConflict(earlier) from None

    async def record_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], conversation_items: list[Item] | None = None) -> None:
        if self.driver.dialect.arrays and not (conversation_items and response.get("conversation_id")):
            # The common case on PostgreSQL: one statement, one round trip.
            await self.driver.write_statement(
                sql.RECORD_RESPONSE_ARRAYS, *sql.response_row(tenant, response, request, None),
                *sql.item_arrays(("input", input_items), ("output", response["output"])))
            return

        async def txn(db: Conn) -> None:
            await db.execute(sql.INSERT_RESPONSE, *sql.response_row(tenant, response, request, None))
            await _store_output(db, tenant, response, conversation_items, None, input_items)

        await self.driver.write(txn, small=True)

    async def finish_response(self, tenant: str, response: dict[str, Any],
                              conversation_items: list[Item] | None = None, *, owner: str | None = None,
                              events: list[dict[str, Any]] | None = None) -> bool:
        rid = response["id"]
        row = (response["status"], sql.dumps(response), tenant, rid)

        async def txn(db: Conn) -> bool:
            if owner is None:
                updated = await db.execute(sql.FINISH_RESPONSE, *row)
            else:
                updated = await db.execute(sql.FINISH_JOB, *row, owner)
            if updated == 0:  # not this tenant's response (or no longer this owner's job): touch nothing
                return False
            await db.execute(sql.DELETE_OUTPUT, rid, tenant)
            await _store_output(db, tenant, response, conversation_items, events)
            return True

        finished = await self.driver.write(txn, small=True)
        self._parsed.forget(tenant, rid)  # (a finished response is finished again only in tests)
        return finished

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _json_or_none(
            await self.driver.read(lambda db: db.fetchval(sql.GET_RESPONSE, tenant, response_id), small=True))
        return result

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _json_or_none(
            await self.driver.read(lambda db: db.fetchval(sql.GET_REQUEST, tenant, response_id)))
        return result

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        async def txn(db: Conn) -> bool:
            await db.execute(sql.DELETE_ITEMS, response_id, tenant)
            return await db.execute(sql.DELETE_RESPONSE, tenant, response_id) > 0

        deleted = await self.driver.write(txn)
        self._parsed.forget(tenant, response_id)
        return deleted

    async def load_context(self, tenant: str, response_id: str) -> list[Item] | None:
        hop_items = sql.HOP_ITEMS_ARRAYS if self.driver.dialect.arrays else sql.HOP_ITEMS

        async def read(db: Conn) -> tuple[list[Row], dict[str, list[Item]], dict[str, list[str]]] | None:
            chain = await db.fetch(sql.CHAIN, tenant, response_id, tenant)
            if not chain:
                return None
            kept, missing = self._parsed.kept(tenant, chain)
            fetched: dict[str, list[str]] = {}
            if missing:
                ids = missing if self.driver.dialect.arrays else orjson.dumps(missing).decode()
                for rid, raw in await db.fetch(hop_items, tenant, ids):
                    fetched.setdefault(rid, []).append(raw)
            return chain, kept, fetched

        got = await self.driver.read(read, small=True)
        return None if got is None else self._parsed.context(tenant, *got)

    async def get_items(self, tenant: str, item_ids: list[str]) -> dict[str, Item]:
        if not item_ids:
            return {}
        query = sql.ITEMS_BY_ID.format(marks=", ".join("?" * len(item_ids)))
        rows = await self.driver.read(lambda db: db.fetch(query, tenant, *item_ids), small=True)
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def list_input_items(self, tenant: str, response_id: str, *, after: str | None,
                               before: str | None, limit: int,
                               order: Literal["asc", "desc"]) -> Page | None:
        async def read(db: Conn) -> list[Row] | None:
            if await db.fetchval(sql.EXISTS, tenant, response_id) is None:
                return None
            return await db.fetch(sql.INPUT_ITEMS, response_id, tenant)

        rows = await self.driver.read(read)
        if rows is None:
            return None
        items = [orjson.loads(r[0]) for r in rows]
        return paging.window(items, after=after, before=before, limit=limit, order=order)

    # -- background jobs -------------------------------------------------------

    async def append_events(self, tenant: str, response_id: str, owner: str, events: list[dict[str, Any]], *,
                            response: dict[str, Any] | None = None) -> bool:
        state = (None, None) if response is None else (response["status"], sql.dumps(response))

        async def txn(db: Conn) -> bool:
            if await db.execute(sql.TOUCH_JOB, *state, tenant, response_id, owner) == 0:
                return False
            await db.executemany(sql.INSERT_EVENT, sql.event_rows(response_id, events))
            return True

        return await self.driver.write(txn)

    async def get_events(self, tenant: str, response_id: str, after: int) -> list[dict[str, Any]]:
        rows = await self.driver.read(lambda db: db.fetch(sql.EVENTS_AFTER, tenant, response_id, after))
        return [orjson.loads(r[0]) for r in rows]

    async def close_job(self, tenant: str, response: dict[str, Any], events: list[dict[str, Any]], *,
                        expired_before: float) -> list[dict[str, Any]] | None:
        rid = response["id"]

        async def txn(db: Conn) -> list[dict[str, Any]] | None:
            # The UPDATE takes the row's lock (SQLite: the write lock), and
            # every runner write updates the row first, so the last sequence
            # number cannot move under us.
            if await db.execute(sql.CLOSE_JOB, response["status"], sql.dumps(response), tenant, rid,
                                expired_before) == 0:
                return None
            stored = sql.numbered(events, await db.fetchval(sql.LAST_EVENT, rid))
            await db.executemany(sql.INSERT_EVENT, sql.event_rows(rid, stored))
            return stored

        return await self.driver.write(txn)

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        await self.driver.write(lambda db: db.execute(sql.RENEW_LEASES, expires_at, owner))

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str]]:
        rows = await self.driver.read(lambda db: db.fetch(sql.EXPIRED_JOBS, now, limit))
        return [(r[0], r[1], r[2]) for r in rows]

    async def claim_job(self, tenant: str, response_id: str, owner: str, now: float, expires_at: float) -> bool:
        query = sql.CLAIM_JOB_SKIP_LOCKED if self.driver.dialect.skip_locked else sql.CLAIM_JOB
        claimed = await self.driver.write(lambda db: db.execute(query, owner, expires_at, tenant, response_id, now))
        return claimed > 0

    # -- conversations ---------------------------------------------------------

    async def create_conversation(self, tenant: str, conversation: dict[str, Any], items: list[Item]) -> None:
        cid = conversation["id"]

        async def txn(db: Conn) -> None:
            await db.execute(sql.INSERT_CONVERSATION, tenant, cid, conversation["created_at"],
                             sql.dumps(conversation["metadata"]))
            if items:
                await _append(db, tenant, cid, items, None)

        await self.driver.write(txn)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        row = await self.driver.read(lambda db: db.fetchrow(sql.GET_CONVERSATION, tenant, conversation_id))
        return None if row is None else _conversation(row)

    async def update_conversation(self, tenant: str, conversation_id: str,
                                  metadata: dict[str, str]) -> dict[str, Any] | None:
        row = await self.driver.write(
            lambda db: db.fetchrow(sql.UPDATE_CONVERSATION, sql.dumps(metadata), tenant, conversation_id))
        return None if row is None else _conversation(row)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        async def txn(db: Conn) -> bool:
            await db.execute(sql.DELETE_CONVERSATION_ITEMS, tenant, conversation_id)
            return await db.execute(sql.DELETE_CONVERSATION, tenant, conversation_id) > 0

        return await self.driver.write(txn)

    async def load_conversation(self, tenant: str, conversation_id: str) -> list[Item] | None:
        rows = await self.driver.read(lambda db: db.fetch(sql.CONVERSATION_CONTEXT, tenant, conversation_id),
                                      small=True)
        if not rows:
            return None
        return [orjson.loads(r[0]) for r in rows if r[0] is not None]

    async def append_conversation_items(self, tenant: str, conversation_id: str, items: list[Item], *,
                                        response_id: str | None = None) -> bool:
        return await self.driver.write(lambda db: _append(db, tenant, conversation_id, items, response_id),
                                       small=True)

    async def list_conversation_items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int,
                                      order: Literal["asc", "desc"]) -> Page | None:
        """Keyset pagination on positions, under ``paging``'s rule."""
        async def read(db: Conn) -> list[Row] | None:
            if await db.fetchrow(sql.GET_CONVERSATION, tenant, conversation_id) is None:
                return None
            start = -1 if order == "asc" else 2**62
            if after is not None:
                start = await db.fetchval(sql.CONVERSATION_ITEM_POSITION, tenant, conversation_id, after)
                if start is None:
                    raise UnknownCursor("after", after)
            query = sql.CONVERSATION_ITEMS_ASC if order == "asc" else sql.CONVERSATION_ITEMS_DESC
            return await db.fetch(query, conversation_id, start, limit + 1)

        rows = await self.driver.read(read)
        if rows is None:
            return None
        return Page([orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit)

    async def get_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> Item | None:
        result: Item | None = _json_or_none(await self.driver.read(
            lambda db: db.fetchval(sql.GET_CONVERSATION_ITEM, tenant, conversation_id, item_id)))
        return result

    async def delete_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> bool:
        deleted = await self.driver.write(
            lambda db: db.execute(sql.DELETE_CONVERSATION_ITEM, tenant, conversation_id, item_id))
        return deleted > 0

    # -- prompts ---------------------------------------------------------------

    async def create_prompt(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        pid = prompt["id"]
        stored = {**prompt, "version": "1"}

        async def txn(db: Conn) -> dict[str, Any] | None:
            if await db.fetchval(sql.PROMPT_OWNER, tenant, pid) is not None:
                return None
            await db.execute(sql.INSERT_PROMPT, tenant, pid, prompt["created_at"])
            await db.execute(sql.INSERT_PROMPT_VERSION, tenant, pid, 1, sql.dumps(stored))
            return stored

        try:
            return await self.driver.write(txn)
        except DuplicateKey:  # a concurrent create of the same id won (PostgreSQL: both passed the check)
            return None

    async def add_prompt_version(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        pid = prompt["id"]

        async def txn(db: Conn) -> dict[str, Any] | None:
            version = await db.fetchval(sql.NEXT_PROMPT_VERSION, tenant, pid)
            if version is None:
                return None
            stored = {**prompt, "version": str(version)}
            await db.execute(sql.INSERT_PROMPT_VERSION, tenant, pid, version, sql.dumps(stored))
            return stored

        return await self.driver.write(txn)

    async def get_prompt(self, tenant: str, prompt_id: str, version: int | None = None) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _json_or_none(
            await self.driver.read(lambda db: db.fetchval(sql.GET_PROMPT_VERSION, tenant, prompt_id, version),
                                   small=True))
        return result

    async def prompt_owner(self, tenant: str, prompt_id: str) -> str | None:
        owner: str | None = await self.driver.read(lambda db: db.fetchval(sql.PROMPT_OWNER, tenant, prompt_id))
        return owner

    async def list_prompts(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self.driver.read(lambda db: db.fetch(sql.LATEST_PROMPTS, tenant))
        return [orjson.loads(r[0]) for r in rows]

    async def list_prompt_versions(self, tenant: str, prompt_id: str) -> list[dict[str, Any]]:
        async def read(db: Conn) -> list[Row]:
            owner = await db.fetchval(sql.PROMPT_OWNER, tenant, prompt_id)
            return [] if owner is None else await db.fetch(sql.PROMPT_VERSIONS, owner, prompt_id)

        return [orjson.loads(r[0]) for r in await self.driver.read(read)]

    async def delete_prompt(self, tenant: str, prompt_id: str) -> bool:
        async def txn(db: Conn) -> bool:
            await db.execute(sql.DELETE_PROMPT_VERSIONS, tenant, prompt_id)
            return await db.execute(sql.DELETE_PROMPT, tenant, prompt_id) > 0

        return await self.driver.write(txn)

    async def server_secret(self, name: str) -> str:
        async def txn(db: Conn) -> str:
            await db.execute(sql.INSERT_SECRET, name, secrets.token_hex(32))
            value: str = await db.fetchval(sql.GET_SECRET, name)
            return value

        return await self.driver.write(txn)

    # -- lists (store/listing.py) -----------------------------------------------

    async def list_responses(self, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                             where: listing.ResponseFilter) -> Page:
        return await self.driver.read(lambda db: listing.list_responses(db, tenant, after=after, limit=limit,
                                                                        order=order, where=where))

    async def list_conversations(self, tenant: str, *, after: str | None, limit: int,
                                 order: Literal["asc", "desc"]) -> Page:
        return await self.driver.read(lambda db: listing.list_conversations(db, tenant, after=after, limit=limit,
                                                                            order=order))

    # -- files (store/files.py) -------------------------------------------------

    async def create_file(self, tenant: str, file: dict[str, Any], storage: str,
                          chunks: Iterable[bytes] = ()) -> None:
        await self.driver.write(lambda db: files.create(db, tenant, file, storage, chunks))

    async def get_file(self, tenant: str, file_id: str, now: int) -> tuple[dict[str, Any], str] | None:
        return await self.driver.read(lambda db: files.get(db, tenant, file_id, now))

    async def list_files(self, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                         purpose: str | None, now: int) -> Page:
        return await self.driver.read(lambda db: files.list_files(db, tenant, after=after, limit=limit, order=order,
                                                                  purpose=purpose, now=now))

    async def delete_file(self, tenant: str, file_id: str) -> str | None:
        return await self.driver.write(lambda db: files.delete(db, tenant, file_id))

    async def file_chunk(self, tenant: str, file_id: str, n: int) -> bytes | None:
        return await self.driver.read(lambda db: files.chunk(db, tenant, file_id, n))

    async def expired_files(self, now: int, limit: int) -> list[tuple[str, str, str]]:
        return await self.driver.read(lambda db: files.expired(db, now, limit))
