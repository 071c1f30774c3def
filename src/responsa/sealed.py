"""Secrets of a queued background job, kept only in a form safe at rest.

A stored request never holds a secret: MCP ``headers``/``authorization``
become ``[redacted]`` and ``credentials`` are dropped. That is right for
the record, but a ``queued`` job that another replica re-runs after its own
replica died was rebuilt from that record, and sent the MCP server
``authorization: [redacted]`` or no credentials at all (issue 15, fault 10).

So a background job's secrets are sealed (Fernet: AES-128-CBC + HMAC-SHA256)
with a key derived from the server secret (``secret_key``, or the one the
database keeps for every replica), stored beside the job, unsealed only to
re-run it, and deleted when the job ends. A job whose secrets cannot be
unsealed (the server secret changed) fails with ``secrets_unavailable``:
never a placeholder sent to a server.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

REDACTED = "[redacted]"


class SealBroken(Exception):
    """The sealed secrets cannot be opened with this server's key."""


def key_for(server_secret: str) -> bytes:
    """The Fernet key for job secrets (separate from every other use of the server secret)."""
    digest = hashlib.sha256(b"responsa:job-secrets:v1\x00" + server_secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def secrets_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """What ``body`` (a create request as the client sent it) holds that the
    stored request does not; ``None`` when there is nothing."""
    found: dict[str, Any] = {}
    if body.get("credentials") not in (None, []):
        found["credentials"] = body["credentials"]
    tools: dict[str, Any] = {}
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "mcp":
            continue
        kept = {k: tool[k] for k in ("headers", "authorization") if tool.get(k) is not None}
        if kept:
            tools[str(i)] = kept
    if tools:
        found["tools"] = tools
    return found or None


def restore(request: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    """The stored ``request`` with its secrets back in place."""
    out = dict(request)
    if "credentials" in secrets:
        out["credentials"] = secrets["credentials"]
    if secrets.get("tools"):
        tools = [dict(t) if isinstance(t, dict) else t for t in out.get("tools") or []]
        for index, kept in secrets["tools"].items():
            i = int(index)
            if i < len(tools) and isinstance(tools[i], dict):
                tools[i].update(kept)
        out["tools"] = tools
    return out


def needs_secrets(request: dict[str, Any]) -> bool:
    """Whether a stored request had secrets stripped (so re-running it without them is wrong)."""
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "mcp":
            headers = tool.get("headers")
            if tool.get("authorization") == REDACTED or (
                    isinstance(headers, dict) and REDACTED in headers.values()):
                return True
    return False


def seal(key: bytes, secrets: dict[str, Any]) -> str:
    return Fernet(key).encrypt(orjson.dumps(secrets)).decode()


def unseal(key: bytes, token: str) -> dict[str, Any]:
    try:
        value = orjson.loads(Fernet(key).decrypt(token.encode()))
    except (InvalidToken, ValueError) as exc:
        raise SealBroken("the sealed secrets do not open with this server's secret") from exc
    if not isinstance(value, dict):
        raise SealBroken("the sealed secrets are not an object")
    return value
