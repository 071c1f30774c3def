"""PostgreSQL driver: the system of record when several replicas serve together.

Same schema, same SQL (``store/sql.py``), same operations
(``store/operations.py``) and same migrations as SQLite; this module only
numbers the placeholders, runs each operation on one pooled connection (a
write inside one transaction) and says what the dialect adds: where SQLite
takes its one write lock (``BEGIN IMMEDIATE``), PostgreSQL locks the rows a
statement updates (a conversation's or prompt's counter row while positions
or versions are allocated) and claims jobs with ``SKIP LOCKED``, so replicas
only ever wait on each other for the rows they actually share.
Every write is one transaction committed before the call returns (PostgreSQL's
default ``synchronous_commit=on``), so anything acknowledged is durable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from responsa.store.driver import Dialect, DuplicateKey, Op, Row, UnstorableText
from responsa.store.operations import SQLStore

T = TypeVar("T")

# One lock per schema, so replicas that start together migrate one after
# the other while unrelated schemas (tests, tenants' own deployments) don't wait.
DIALECT = Dialect("postgresql", skip_locked=True, migration_lock=(
    "SELECT pg_advisory_xact_lock(hashtext('responsa.migrations.' || current_schema()))"), arrays=True)


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


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``UPDATE 1`` (0 for DDL)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Conn:
    dialect = DIALECT

    def __init__(self, conn: PoolConnectionProxy[Any]) -> None:
        self._conn = conn

    async def execute(self, query: str, *params: Any) -> int:
        return _count(await self._conn.execute(pg(query), *params))

    async def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(pg(query), rows)

    async def fetch(self, query: str, *params: Any) -> list[Row]:
        return list(await self._conn.fetch(pg(query), *params))

    async def fetchrow(self, query: str, *params: Any) -> Row | None:
        row: Row | None = await self._conn.fetchrow(pg(query), *params)
        return row

    async def fetchval(self, query: str, *params: Any) -> Any:
        return await self._conn.fetchval(pg(query), *params)


class PostgresDriver:
    dialect = DIALECT

    def __init__(self, url: str, **pool_options: Any) -> None:
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

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def read(self, op: Op[T], *, small: bool = False) -> T:
        try:
            async with self.pool.acquire() as conn:
                return await op(_Conn(conn))
        except asyncpg.CharacterNotInRepertoireError:
            raise UnstorableText from None

    async def write(self, op: Op[T], *, small: bool = False) -> T:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                return await op(_Conn(conn))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc
        except asyncpg.CharacterNotInRepertoireError:
            raise UnstorableText from None


    async def write_statement(self, query: str, *params: Any) -> int:
        try:
            return _count(await self.pool.execute(pg(query), *params))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc
        except asyncpg.CharacterNotInRepertoireError:
            raise UnstorableText from None


class PostgresStore(SQLStore):
    """The store on a PostgreSQL database (``postgresql://...``)."""

    driver: PostgresDriver

    def __init__(self, url: str, **pool_options: Any) -> None:
        """``pool_options`` go to ``asyncpg.create_pool`` (sizes, ``ssl``,
        ``statement_cache_size=0`` behind PgBouncer, a ``setup`` hook)."""
        super().__init__(PostgresDriver(url, **pool_options))
        self.url = url
