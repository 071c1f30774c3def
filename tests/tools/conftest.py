"""Real MCP servers for the tool tests, served by uvicorn on free ports
in-process: streamable HTTP, SSE, and a streamable HTTP one that requires a
bearer token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import serve_in_thread
from tests.providers.conftest import (  # noqa: F401  the fake upstreams, for the tool type round trips
    anthropic_fake_server,
    chat_fake_server,
    fake_providers,
    responses_fake_server,
)
from tests.tools.support import TOKEN, make_server, require_bearer


@pytest.fixture(scope="session")
def mcp_http() -> Iterator[str]:
    """URL of a streamable HTTP MCP server."""
    with serve_in_thread(make_server("calc").streamable_http_app(), lifespan="on") as url:
        yield f"{url}/mcp"


@pytest.fixture(scope="session")
def mcp_sse() -> Iterator[str]:
    """URL of an SSE MCP server."""
    with serve_in_thread(make_server("calc-sse").sse_app(), lifespan="on") as url:
        yield f"{url}/sse"


@pytest.fixture(scope="session")
def mcp_private() -> Iterator[str]:
    """URL of a streamable HTTP MCP server that requires ``Bearer TOKEN``."""
    app = require_bearer(make_server("vault").streamable_http_app(), TOKEN)
    with serve_in_thread(app, lifespan="on") as url:
        yield f"{url}/mcp"
