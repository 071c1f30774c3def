"""Which stored requests lost secrets that a re-run would need.

A stored request never holds a secret: MCP ``headers``/``authorization``
become ``[redacted]`` and ``credentials`` are replaced by the same marker.
That is right for the record, but a ``queued`` background job that another
replica re-ran after its own replica died was rebuilt from that record and
sent the MCP server ``authorization: [redacted]``, or no credentials at all
(issue 15, fault 10). ``needs_secrets`` lets the re-run fail the job with
``secrets_unavailable`` instead: never a placeholder sent to a server.

(Keeping such secrets sealed with the server secret until the job ends
would let the re-run succeed; not done yet: a job that lost its replica
before starting is rare, and failing it clearly is always safe.)
"""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"


def needs_secrets(request: dict[str, Any]) -> bool:
    """Whether a stored request had secrets stripped (so re-running it without them is wrong)."""
    if request.get("credentials") == REDACTED:
        return True
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "mcp":
            headers = tool.get("headers")
            if tool.get("authorization") == REDACTED or (
                    isinstance(headers, dict) and REDACTED in headers.values()):
                return True
    return False
