"""Files tests run on both stores: ``files_server`` is a server over SQLite
(content on disk beside the database) and one over PostgreSQL (content in
the database); the PostgreSQL fixture is the store tests' own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.files.support import LIMIT
from tests.helpers import server_settings
from tests.store.backends import admin, in_own_loop, new_schema_name, with_search_path
from tests.store.conftest import pg_url

__all__ = ["pg_url"]

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def files_server(request: pytest.FixtureRequest, serve_responsa: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(base URL, the server's directory)`` of a server with a 3 MiB upload limit."""
    tmp = tmp_path_factory.mktemp("files")
    if request.param == "sqlite":
        with serve_responsa(server_settings(tmp, max_file_bytes=LIMIT)) as url:
            yield url, tmp
        return
    pg = request.getfixturevalue("pg_url")
    schema = new_schema_name()
    in_own_loop(lambda: admin(pg, f'CREATE SCHEMA "{schema}"'))
    try:
        with serve_responsa(server_settings(tmp, max_file_bytes=LIMIT,
                                            database_url=with_search_path(pg, schema))) as url:
            yield url, tmp
    finally:
        in_own_loop(lambda: admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))
