"""Real MCP servers for the tool tests, built with the ``mcp`` SDK's
``MCPServer`` (FastMCP) and served by uvicorn on free ports in-process:
streamable HTTP, SSE, and a streamable HTTP one that requires a bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from tests.helpers import serve_in_thread

TOKEN = "sk-mcp-test-7f3a9c2e1b5d"
"""The bearer token the protected server wants: it must never show up in the database or the logs."""


def make_server(name: str) -> MCPServer:
    srv = MCPServer(name)

    @srv.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @srv.tool()
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    @srv.tool()
    def explode() -> str:
        """Always fails."""
        raise ValueError("the tool exploded")

    @srv.tool()
    def huge() -> str:
        """A very long output."""
        return "x" * 300_000

    return srv


def require_bearer(app: Any, token: str) -> Any:
    """An ASGI wrapper that answers 401 unless ``Authorization: Bearer <token>``."""
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != f"Bearer {token}".encode():
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "unauthorized"}'})
            return
        await app(scope, receive, send)
    return wrapped


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
