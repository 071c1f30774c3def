"""The operator's tables (``api_keys``, ``usage_daily``) and the read-only
questions health and metrics ask the database (migrations applied,
background queue depth).

A connection of its own next to the store's, so the response store stays
unaware of keys: ``sqlite3`` on one worker thread, or a small ``asyncpg``
pool. The tables come from the store's migrations (``0100_keys_usage.sql``),
which the store applies when it opens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from responsa.store import sql, sqlite_lib

KEY_PREFIX = "rsk-"
LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "token_budget")
_KEY_COLUMNS = ("id, name, key_hash, prefix, tenant, created_at, revoked_at, requests_per_minute, "
                "tokens_per_minute, max_concurrent, token_budget")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("latin-1", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    key_hash: str
    prefix: str
    tenant: str
    created_at: int
    revoked_at: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    token_budget: int | None = None

    def public(self) -> dict[str, Any]:
        """As listed to an operator: never the hash, only the prefix."""
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "created_at": self.created_at,
                "revoked_at": self.revoked_at, **{f: getattr(self, f) for f in LIMIT_FIELDS}}

    @property
    def limited(self) -> bool:
        return any(getattr(self, f) for f in LIMIT_FIELDS)


@dataclass(frozen=True, slots=True)
class UsageRow:
    tenant: str
    model: str
    day: str
    key_id: str | None
    requests: int
    input_tokens: int
    output_tokens: int


def _pg(query: str) -> str:
    from responsa.store.postgres import pg

    return pg(query)


class OpsDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgres://", "postgresql://"))
        self._pool: Any = None
        self._db: sqlite_lib.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self.postgres:
            import asyncpg

            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=2)
            return
        path = self.url.removeprefix("sqlite:///").removeprefix("sqlite://").partition("?")[0] or ":memory:"
        path = urllib.parse.unquote(path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-opsdb")

        def connect() -> sqlite_lib.Connection:
            db = sqlite_lib.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
            db.execute("PRAGMA busy_timeout=5000")
            if path == ":memory:":
                # A private database nobody else migrates (tests): give it the schema itself.
                db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
                for version, script in sql.migrations():
                    for stmt in sql.split_statements(script):
                        db.execute(stmt)
                    db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, connect)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._db is not None and self._thread is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
            self._thread.shutdown(wait=False)

    # -- plumbing -------------------------------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._pool is not None:
            return [tuple(r) for r in await self._pool.fetch(_pg(query), *args)]
        rows: list[tuple[Any, ...]] = await self._on_thread(lambda db: db.execute(query, args).fetchall())
        return rows

    async def _execute(self, query: str, *args: Any) -> int:
        if self._pool is not None:
            status = await self._pool.execute(_pg(query), *args)
            return int(str(status).rsplit(" ", 1)[-1])
        count: int = await self._on_thread(lambda db: db.execute(query, args).rowcount)
        return count

    async def _execute_many(self, query: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._pool is not None:
            await self._pool.executemany(_pg(query), rows)
            return

        def run(db: sqlite_lib.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(query, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._on_thread(run)

    async def _on_thread(self, fn: Callable[[sqlite_lib.Connection], Any]) -> Any:
        db = self._db
        if db is None or self._thread is None:
            raise RuntimeError("the database is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, db)

    # -- health and metrics ----------------------------------------------------------

    async def missing_migrations(self) -> list[int]:
        """Packaged migrations the database has not applied (empty when ready)."""
        applied = {int(r[0]) for r in await self._fetch("SELECT version FROM schema_migrations")}
        return [v for v, _ in sql.migrations("postgresql" if self.postgres else "sqlite") if v not in applied]

    async def background_counts(self) -> dict[str, int]:
        """Background responses waiting for a worker and running, database-wide."""
        rows = await self._fetch("SELECT status, COUNT(*) FROM responses WHERE status IN ('queued', 'in_progress') "
                                 "AND background = ? GROUP BY status", True)
        found = {"queued": 0, "in_progress": 0}
        found.update({str(s): int(n) for s, n in rows})
        return found

    # -- keys ----------------------------------------------------------------------------

    async def create_key(self, name: str, **limits: int | None) -> tuple[str, ApiKey]:
        """A new key: the secret (shown once) and its record."""
        unknown = set(limits) - set(LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(secret)
        key = ApiKey(id="key_" + secrets.token_hex(8), name=name, key_hash=digest, prefix=secret[:12],
                     tenant=digest[:32], created_at=int(time.time()),
                     **{f: limits.get(f) for f in LIMIT_FIELDS})
        await self._execute(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            key.id, key.name, key.key_hash, key.prefix, key.tenant, key.created_at, None,
                            key.requests_per_minute, key.tokens_per_minute, key.max_concurrent, key.token_budget)
        return secret, key

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [ApiKey(*r) for r in rows]

    async def find_key(self, key_hash: str) -> ApiKey | None:
        rows = await self._fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", key_hash)
        return ApiKey(*rows[0]) if rows else None

    async def revoke_key(self, key_id_or_key: str) -> bool:
        """Revoke by id (``key_...``) or by the key itself."""
        column, value = ("key_hash", hash_key(key_id_or_key)) if key_id_or_key.startswith(KEY_PREFIX) else (
            "id", key_id_or_key)
        return await self._execute(f"UPDATE api_keys SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
                                   int(time.time()), value) > 0

    # -- usage ------------------------------------------------------------------------------

    async def add_usage(self, rows: list[UsageRow]) -> None:
        await self._execute_many(
            "INSERT INTO usage_daily (tenant, model, day, key_id, requests, input_tokens, output_tokens) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, model, day) DO UPDATE SET "
            "requests = usage_daily.requests + excluded.requests, "
            "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
            "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
            "key_id = COALESCE(excluded.key_id, usage_daily.key_id)",
            [(r.tenant, r.model, r.day, r.key_id, r.requests, r.input_tokens, r.output_tokens) for r in rows])

    async def usage(self, *, tenant: str | None = None, start: str | None = None,
                    end: str | None = None) -> list[UsageRow]:
        """Daily rows, oldest first; ``start``/``end`` are inclusive ISO dates."""
        where, args = ["1 = 1"], []
        if tenant is not None:
            where.append("tenant = ?")
            args.append(tenant)
        if start is not None:
            where.append("day >= ?")
            args.append(start)
        if end is not None:
            where.append("day <= ?")
            args.append(end)
        rows = await self._fetch(
            "SELECT tenant, model, day, key_id, requests, input_tokens, output_tokens FROM usage_daily "
            f"WHERE {' AND '.join(where)} ORDER BY day, tenant, model", *args)
        return [UsageRow(*r) for r in rows]

    async def spent(self, tenant: str) -> int:
        """Every token the tenant has used, as far as the usage table knows."""
        rows = await self._fetch("SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_daily "
                                 "WHERE tenant = ?", tenant)
        return int(rows[0][0])
