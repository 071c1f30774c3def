"""The end-to-end fixture: a real Responsa server (uvicorn on a free port,
SQLite file store, deterministic test model) shared by the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import serve_in_thread

# The embedded model's llama.cpp threads spin-wait on each other: with the
# test servers, fakes and MCP servers sharing two cores, one thread is the
# fast and predictable choice (inherited by servers tests start as processes).
os.environ.setdefault("RESPONSA_LOCAL_THREADS", "1")


@pytest.fixture(scope="session")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("db")) / "responsa.db"


@pytest.fixture(scope="session")
def server(db_file: Path) -> Iterator[str]:
    """Base URL (no ``/v1``) of a running server."""
    settings = load_settings(None, database_url=f"sqlite:///{db_file}", default_model="test/echo",
                             mcp_allow_private=["127.0.0.1", "localhost"])
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture
def client(server: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as c:
        yield c
