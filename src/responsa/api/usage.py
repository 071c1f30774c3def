"""``GET /v1/usage``: requests and tokens by API key, model and day.

A key sees its own usage; an admin key (``admin_keys``) sees every key's,
and may narrow it with ``key_id``. Rows are what the gate has written:
this replica's pending usage is flushed first, other replicas' arrives
within a second (``keys.gate.FLUSH_S``)."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.protocol.errors import APIError, invalid

_PARAMS = frozenset({"start_date", "end_date", "key_id"})


def _date(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return datetime.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise invalid(f"'{name}' must be a date as YYYY-MM-DD, not {raw[:40]!r}.", name) from None


async def usage(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    unknown = sorted(set(request.query_params) - _PARAMS)
    if unknown:
        raise invalid(f"Unknown parameter(s): {', '.join(repr(u[:40]) for u in unknown)}.", unknown[0],
                      "unknown_parameter")
    start, end = _date(request, "start_date"), _date(request, "end_date")
    ops = request.app.state.ops
    admin = ops.gate.is_admin(tenant)
    key_id = request.query_params.get("key_id")
    if key_id is not None and not admin:
        raise APIError("Only an admin key can read another key's usage.", status=403, type="permission_error",
                       param="key_id", code="admin_key_required")
    await ops.gate.usage.flush()
    names = {k.id: k.name for k in await ops.db.list_keys()}
    rows = await ops.db.usage(tenant=None if admin else tenant, start=start, end=end)
    data: list[dict[str, Any]] = [
        {"object": "usage.daily", "date": r.day, "key_id": r.key_id, "key_name": names.get(r.key_id or ""),
         "tenant": r.tenant[:16], "model": r.model, "requests": r.requests, "input_tokens": r.input_tokens,
         "output_tokens": r.output_tokens, "total_tokens": r.input_tokens + r.output_tokens}
        for r in rows if key_id is None or r.key_id == key_id]
    totals = {k: sum(d[k] for d in data) for k in ("requests", "input_tokens", "output_tokens", "total_tokens")}
    return json_response({"object": "list", "data": data, "totals": totals})


routes = [Route("/v1/usage", usage, methods=["GET"])]
