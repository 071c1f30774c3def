"""Store fixtures: every contract test runs against SQLite and against the
real local PostgreSQL, each test in a brand-new database (a temp file, or a
fresh schema selected through the connection URL and dropped afterwards).
Tests that need a server skip, saying why, only when it is unreachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responsa.store import Store, open_store
from tests.store.backends import fresh_schema, in_own_loop, reachable_postgres


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Base URL of the reachable PostgreSQL."""
    url, errors = in_own_loop(reachable_postgres)
    if url is None:
        pytest.skip("PostgreSQL not reachable: " + "; ".join(errors))
    return url


@pytest.fixture(params=["sqlite", "sqlite-inline", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL onto an empty database of each backend. ``sqlite-inline``: the
    same database, used by a caller that is alone (``store`` runs its calls
    inline on the event loop's thread instead of the store's thread)."""
    if request.param.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_schema(request.getfixturevalue("pg_url")) as url:
        yield url


@pytest.fixture
async def store(store_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    inline = request.node.callspec.params.get("store_url") == "sqlite-inline"
    s = open_store(store_url, alone=(lambda: True) if inline else None)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
