"""Shared pieces of the tool tests: real MCP servers built with the ``mcp``
SDK's ``MCPServer`` (FastMCP), and a validating ``create``."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.server.mcpserver import MCPServer
from openai import OpenAI
from openai.types.responses import Response

from tests.helpers import validate_response

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
    async def nap(seconds: float) -> str:
        """Sleep, then say so (shows that calls run in parallel)."""
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

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


def create(client: OpenAI, **kwargs: Any) -> Response:
    """``responses.create`` whose raw JSON is validated against the spec."""
    raw = client.responses.with_raw_response.create(**kwargs)
    validate_response(raw.http_response.json())
    return raw.parse()
