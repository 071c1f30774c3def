"""Dry runs of ``create``: endpoints that take a would-be ``create`` body
and assemble its context without running a model —
``POST /v1/responses/compact`` and ``POST /v1/responses/input_tokens``.

Both assemble the context exactly as ``create`` would (``engine.context``:
validation, ``previous_response_id``, compaction items), so what they
compact or count is what a model would have seen.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.responses import json_response
from responsa.api.state import AppState, json_body, state
from responsa.engine import compaction, tokens
from responsa.engine.context import Prepared
from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.protocol.request import CreateResponse, parse_create

_COMPACT_PARAMS = frozenset({"model", "input", "instructions", "previous_response_id", "prompt_cache_key"})
_COUNT_PARAMS = frozenset({"model", "input", "instructions", "previous_response_id", "conversation", "tools",
                           "tool_choice", "parallel_tool_calls", "reasoning", "text", "truncation", "prompt"})


def _parse(body: Any, allowed: frozenset[str], endpoint: str) -> CreateResponse:
    if isinstance(body, dict):
        for key in body:
            if key not in allowed:
                raise invalid(f"Unknown parameter: '{key}' (not accepted by {endpoint}).", key,
                              "unknown_parameter")
    return parse_create(body)


async def _context(request: Request, allowed: frozenset[str], endpoint: str, *,
                   require_model: bool) -> tuple[AppState, str, CreateResponse, Prepared]:
    st = state(request)
    tenant = st.tenant(request)
    req = _parse(await json_body(request, st.settings.max_body_bytes), allowed, endpoint)
    if require_model and req.model is None:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    prep = await st.engine.prepare(req, tenant, enforce_window=req.truncation == "auto")
    return st, tenant, req, prep


def _count(prep: Prepared) -> int:
    r = prep.turn.request
    return tokens.count(r.items, r.instructions, r.tools, r.model)


async def compact(request: Request) -> Response:
    """The user messages stay verbatim (clients show them); everything is
    encoded, in order, in one compaction item."""
    st, tenant, _, prep = await _context(request, _COMPACT_PARAMS, "/v1/responses/compact", require_model=True)
    items = prep.turn.request.items
    kept = [it for it in items if it["type"] == "message" and it["role"] == "user"]
    n = _count(prep)
    return json_response({
        "id": new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, compaction.encode(items, key=st.engine.compaction_key, tenant=tenant)],
        "usage": {"input_tokens": n, "output_tokens": 0, "total_tokens": n,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    })


async def input_tokens(request: Request) -> Response:
    """With ``truncation: "auto"`` the count is of the context after truncation."""
    _, _, _, prep = await _context(request, _COUNT_PARAMS, "/v1/responses/input_tokens", require_model=False)
    return json_response({"object": "response.input_tokens", "input_tokens": _count(prep)})


routes = [
    Route("/v1/responses/compact", compact, methods=["POST"]),
    Route("/v1/responses/input_tokens", input_tokens, methods=["POST"]),
]
