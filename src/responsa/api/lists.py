"""The HTTP side of the list endpoints' one pagination rule
(``store/paging.py``): the query parameters in, the list object out."""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request

from responsa.protocol.errors import invalid
from responsa.protocol.request import whole_number


def list_params(request: Request, *, default_limit: int = 20,
                max_limit: int = 100) -> tuple[str | None, str | None, int, Literal["asc", "desc"]]:
    """``after``/``before``/``limit``/``order`` exactly as OpenAI's lists take
    them (``limit`` 1-100, default 20, unless the list says otherwise)."""
    q = request.query_params
    limit = whole_number(q.get("limit", str(default_limit)))
    if limit is None or not 1 <= limit <= max_limit:
        raise invalid(f"'limit' must be an integer between 1 and {max_limit}.", "limit")
    match q.get("order", "desc"):
        case "asc":
            return q.get("after"), q.get("before"), limit, "asc"
        case "desc":
            return q.get("after"), q.get("before"), limit, "desc"
    raise invalid("'order' must be 'asc' or 'desc'.", "order")


def list_body(data: list[dict[str, Any]], has_more: bool, *, key: str = "id") -> dict[str, Any]:
    """The list object; ``first_id``/``last_id`` are the cursors that page on
    from here (``key``: what the list's cursors name, ``version`` for a
    prompt's versions)."""
    return {"object": "list", "data": data, "first_id": data[0][key] if data else None,
            "last_id": data[-1][key] if data else None, "has_more": has_more}
