"""SQL shared by the SQLite and PostgreSQL stores (written with ``?``
placeholders; the PostgreSQL store numbers them), plus the migration list.
One copy of every query keeps the two backends from drifting apart."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

INSERT_RESPONSE = (
    "INSERT INTO responses (tenant, id, status, created_at, previous_response_id, conversation_id, "
    "background, idempotency_key, request, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_ITEM = "INSERT INTO items (response_id, tenant, role, position, id, item) VALUES (?, ?, ?, ?, ?, ?)"
FINISH_RESPONSE = "UPDATE responses SET status = ?, response = ? WHERE tenant = ? AND id = ?"
DELETE_OUTPUT = "DELETE FROM items WHERE response_id = ? AND role = 'output'"
GET_RESPONSE = "SELECT response FROM responses WHERE tenant = ? AND id = ?"
GET_REQUEST = "SELECT request FROM responses WHERE tenant = ? AND id = ?"
DELETE_ITEMS = "DELETE FROM items WHERE response_id = ? AND tenant = ?"
DELETE_RESPONSE = "DELETE FROM responses WHERE tenant = ? AND id = ?"
BY_IDEMPOTENCY = "SELECT id FROM responses WHERE tenant = ? AND idempotency_key = ?"
EXISTS = "SELECT 1 FROM responses WHERE tenant = ? AND id = ?"

# The whole previous_response_id chain in one round trip: walk back with a
# recursive CTE, then read every hop's items oldest hop first, inputs
# before outputs.
CHAIN_ITEMS = """
WITH RECURSIVE chain (id, prev, depth) AS (
    SELECT id, previous_response_id, 0 FROM responses WHERE tenant = ? AND id = ?
    UNION ALL
    SELECT r.id, r.previous_response_id, c.depth + 1
    FROM responses r JOIN chain c ON r.id = c.prev
    WHERE r.tenant = ? AND c.depth < 10000
)
SELECT i.item FROM chain c JOIN items i ON i.response_id = c.id
ORDER BY c.depth DESC, i.role ASC, i.position ASC
"""

INPUT_ITEMS = "SELECT position, item FROM items WHERE response_id = ? AND tenant = ? AND role = 'input'"
ITEMS_BY_ID = "SELECT id, item FROM items WHERE tenant = ? AND id IN ({marks})"


def migrations() -> list[tuple[int, str]]:
    """``(version, sql)`` in order, from the packaged ``migrations/`` folder."""
    folder = resources.files("responsa.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def split_statements(script: str) -> list[str]:
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def response_row(tenant: str, response: dict[str, Any], request: dict[str, Any],
                 idempotency_key: str | None) -> tuple[Any, ...]:
    return (tenant, response["id"], response["status"], response["created_at"],
            response.get("previous_response_id"), response.get("conversation_id"),
            bool(response.get("background")), idempotency_key, dumps(request), dumps(response))


def item_rows(tenant: str, response_id: str, role: str, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(response_id, tenant, role, i, it.get("id", ""), dumps(it)) for i, it in enumerate(items)]


def page(rows: list[tuple[int, str]], *, after: str | None, before: str | None, limit: int,
         order: str) -> tuple[list[dict[str, Any]], bool] | None:
    """Cursor pagination over one response's input items, like OpenAI's:
    ``after``/``before`` are item ids in the requested order. ``None`` if a
    cursor names an item that is not in the list."""
    items = [orjson.loads(r[1]) for r in sorted(rows, reverse=order == "desc")]
    ids = [it.get("id") for it in items]
    start, end = 0, len(items)
    if after is not None:
        if after not in ids:
            return None
        start = ids.index(after) + 1
    if before is not None:
        if before not in ids:
            return None
        end = ids.index(before)
    window = items[start:end]
    return window[:limit], len(window) > limit
