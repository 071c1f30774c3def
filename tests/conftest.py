"""The end-to-end fixture: a real Responsa server (uvicorn on a free port,
SQLite file store, deterministic test model) shared by the session; and the
one place that decides which tests are ``slow``.

Two tiers: ``pytest`` runs everything (what ``make test`` and CI run);
``pytest -m "not slow"`` is the inner loop, a few seconds: protocol, config,
client, providers against the in-process fake upstreams, the SQLite store.
Slow is everything end to end on a Responsa server (``server``,
``serve_responsa``), and what needs more than this process: PostgreSQL or
Redis, the embedded model, processes, long property-based runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from responsa.config import load_settings
from tests.helpers import Serve
from tests.helpers import serve_responsa as _serve_responsa

# The embedded model's llama.cpp threads spin-wait on each other: with the
# test servers, fakes and MCP servers sharing two cores, one thread is the
# fast and predictable choice (inherited by servers tests start as processes).
os.environ.setdefault("RESPONSA_LOCAL_THREADS", "1")


SLOW_FIXTURES = {
    "server": "end to end on a Responsa server",
    "serve_responsa": "end to end on a Responsa server",
    "pg_url": "needs PostgreSQL",
    "redis_url": "needs Redis",
    "two_replicas": "needs PostgreSQL and Redis",
    "local": "runs the embedded model",
}
"""A test that uses one of these fixtures (directly or through another
fixture) is marked ``slow``, so new tests are classified without a decorator.
Tests whose *body* starts a process carry ``@pytest.mark.slow`` themselves."""

SLOW_PARAMS = {("store_url", "postgres"): "needs PostgreSQL"}
"""The same for parametrized fixtures whose slow case picks its fixture at run time."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        reasons = [why for name, why in SLOW_FIXTURES.items() if name in fixtures]
        reasons += [why for (name, value), why in SLOW_PARAMS.items() if params.get(name) == value]
        if reasons:
            item.add_marker(pytest.mark.slow(reason=reasons[0]))


@pytest.fixture(scope="session")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("db")) / "responsa.db"


@pytest.fixture(scope="session")
def server(db_file: Path) -> Iterator[str]:
    """Base URL (no ``/v1``) of a running server."""
    settings = load_settings(None, database_url=f"sqlite:///{db_file}", default_model="test/echo",
                             mcp_allow_private=["127.0.0.1", "localhost"])
    with _serve_responsa(settings) as url:
        yield url


@pytest.fixture(scope="session")
def serve_responsa() -> Serve:
    """Starts another Responsa server: ``with serve_responsa(server_settings(tmp, ...)) as url``."""
    return _serve_responsa


@pytest.fixture
def client(server: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as c:
        yield c
