"""Where the real PostgreSQL and Redis are, and fresh databases on them.

PostgreSQL: ``RESPONSA_TEST_POSTGRES_URL`` or ``postgresql://{postgres,root}@127.0.0.1:5432/test``.
Redis: ``RESPONSA_TEST_REDIS_URL`` or ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import redis.asyncio as aioredis

T = TypeVar("T")

PG_CANDIDATES = ([os.environ["RESPONSA_TEST_POSTGRES_URL"]] if os.environ.get("RESPONSA_TEST_POSTGRES_URL")
                 else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"])
REDIS_URL = os.environ.get("RESPONSA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_own_loop(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a probe outside pytest-asyncio's loop (from a sync fixture)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fn()).result()


async def reachable_postgres() -> tuple[str | None, list[str]]:
    """The first candidate URL that accepts a connection, and why the others did not."""
    errors = []
    for url in PG_CANDIDATES:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            errors.append(f"{url}: {exc!r}")
            continue
        try:
            await ensure_vector(conn)
        finally:
            await conn.close()
        return url, errors
    return None, errors


async def ensure_vector(conn: asyncpg.Connection) -> None:
    """pgvector in ``public`` once per database, before any test schema
    exists: created from a test's schema, it would live (and be dropped) there.
    ``scripts/install-pgvector.sh`` (run by ``.ci/run``) makes it available."""
    with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):  # created meanwhile
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")


async def redis_error() -> str | None:
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
        return None
    except (OSError, aioredis.RedisError) as exc:
        return repr(exc)
    finally:
        await client.aclose()


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq-style ``options``, which
    asyncpg passes through as a startup parameter), then ``public``, where
    the ``vector`` extension's type and operators live (``reachable_postgres``)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public', safe='')}"


async def admin(base_url: str, statement: str) -> None:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def new_schema_name() -> str:
    return f"responsa_test_{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def fresh_schema(base_url: str) -> AsyncIterator[str]:
    """A URL onto a new, empty schema that is dropped on exit."""
    name = new_schema_name()
    await admin(base_url, f'CREATE SCHEMA "{name}"')
    try:
        yield with_search_path(base_url, name)
    finally:
        await admin(base_url, f'DROP SCHEMA "{name}" CASCADE')
