"""Which listed tools the model may see (``allowed_tools``) and which need
the client's approval before they run (``require_approval``), in OpenAI's
filter shapes; and the check that every ``mcp_approval_response`` answers
a request that exists and is still open."""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid


def _matches(flt: Any, name: str, read_only: bool) -> bool:
    if not isinstance(flt, dict):
        return False
    if name in (flt.get("tool_names") or []):
        return True
    return flt.get("read_only") is True and read_only


def allowed(policy: Any, name: str, read_only: bool) -> bool:
    if policy is None:
        return True
    if isinstance(policy, list):
        return name in policy
    names = policy.get("tool_names")
    if names is not None and name not in names:
        return False
    return not (policy.get("read_only") is True and not read_only)


def needs_approval(policy: Any, name: str, read_only: bool) -> bool:
    if policy in ("always", "never"):
        return bool(policy == "always")
    if _matches(policy.get("always"), name, read_only):
        return True
    return not _matches(policy.get("never"), name, read_only)


def answered_requests(history: list[dict[str, Any]], new_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The approval responses of this turn, each checked against the request
    it answers (which must exist and not have been answered before)."""
    if not any(it["type"] == "mcp_approval_response" for it in new_items):
        return []  # the usual turn: the history, however long, is not read
    requests = {it["id"]: it for it in [*history, *new_items] if it["type"] == "mcp_approval_request"}
    done = {it["approval_request_id"] for it in history if it["type"] == "mcp_approval_response"}
    out = []
    for i, it in enumerate(new_items):
        if it["type"] != "mcp_approval_response":
            continue
        rid = it["approval_request_id"]
        if rid not in requests:
            raise invalid(f"No MCP approval request found with id {rid!r}.", f"input[{i}].approval_request_id",
                          "approval_request_not_found")
        if rid in done:
            raise invalid(f"The MCP approval request {rid!r} was already answered.",
                          f"input[{i}].approval_request_id", "approval_request_answered")
        done.add(rid)
        out.append(it)
    return out
