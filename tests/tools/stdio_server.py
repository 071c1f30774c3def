"""An MCP server over stdio, started by Responsa from an operator-configured
registry entry; it reports whether the credential reached its environment."""

from __future__ import annotations

import hashlib
import os

from mcp.server.mcpserver import MCPServer

srv = MCPServer("stdio-vault")


@srv.tool()
def token_digest() -> str:
    """SHA-256 of the VAULT_TOKEN environment variable (never the token itself)."""
    return hashlib.sha256(os.environ.get("VAULT_TOKEN", "").encode()).hexdigest()


if __name__ == "__main__":
    srv.run()
