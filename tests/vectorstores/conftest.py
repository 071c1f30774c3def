"""Vector store servers on both stores: ``vs_server`` is a Responsa server
over SQLite (sqlite-vec + FTS5) and one over PostgreSQL (pgvector +
tsvector), each with the real Files API and the real local embedding model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import server_settings
from tests.store.backends import admin, in_own_loop, new_schema_name, with_search_path
from tests.store.conftest import pg_url

__all__ = ["pg_url"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def vs_server(request: pytest.FixtureRequest, serve_responsa: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("vs")
    if request.param == "sqlite":
        with serve_responsa(server_settings(tmp)) as url:
            yield url
        return
    pg = request.getfixturevalue("pg_url")
    schema = new_schema_name()
    in_own_loop(lambda: admin(pg, f'CREATE SCHEMA "{schema}"'))
    try:
        with serve_responsa(server_settings(tmp, database_url=with_search_path(pg, schema))) as url:
            yield url
    finally:
        in_own_loop(lambda: admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for a server process of its own (``request.param``: sqlite or postgres)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'responsa.db'}"
        return
    pg = request.getfixturevalue("pg_url")
    schema = new_schema_name()
    in_own_loop(lambda: admin(pg, f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(pg, schema)
    finally:
        in_own_loop(lambda: admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))
