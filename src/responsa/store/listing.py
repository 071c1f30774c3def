"""Listing a tenant's responses and conversations, newest first, by cursor.

Operations over a driver's ``Conn`` (``store/driver.py``), written once for
both databases; ``SQLStore`` runs each list as one ``Driver.read`` (so one
thread hop on SQLite, however many batches a filtered scan reads). The
console's list views and ``GET /v1/responses`` / ``GET /v1/conversations``
read through here.

Pages are keyset pages on ``(created_at, insertion order)`` (migration 0006;
insertion order is SQLite's ``rowid`` and PostgreSQL's ``seq``): page N
costs what page 1 costs, however many rows a tenant has, where ``OFFSET``
would read and throw away every earlier row. An ``after`` that names no row
of the tenant is ``UnknownCursor`` (the one pagination rule, ``paging.py``).

``model`` and ``metadata`` live inside the stored Response JSON, not in
columns. Rather than dialect-specific JSON operators, the query narrows rows
with a ``LIKE`` on the JSON text (orjson writes it compactly, and a quote
inside a JSON *string* is escaped, so ``"model":"x"`` only occurs as a real
key/value pair) and Python then checks the decoded value exactly; a row the
``LIKE`` lets through by accident (a metadata key named ``model``, a case
difference on SQLite) is dropped and the scan reads on, so the answer is
exact and usually one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from responsa.store.base import Page, UnknownCursor
from responsa.store.driver import Conn

_INSERTION_ORDER = {"sqlite": "rowid", "postgresql": "seq"}
"""The column that orders rows created in the same second (``created_at`` has whole seconds)."""

BATCH = 200
"""Rows read per round trip when filters are checked in Python."""


@dataclass(slots=True, frozen=True)
class ResponseFilter:
    """What ``list_responses`` keeps; every field is optional (``None``/empty = any)."""

    model: str | None = None
    status: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    background: bool | None = None
    conversation_id: str | None = None
    previous_response_id: str | None = None
    id_prefix: str | None = None

    def keeps(self, response: dict[str, Any]) -> bool:
        """The exact check behind the ``LIKE`` prefilter."""
        if self.model is not None and response.get("model") != self.model:
            return False
        meta = response.get("metadata") or {}
        return all(meta.get(k) == v for k, v in self.metadata.items())


def _like(fragment: str) -> str:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _pair(key: str, value: str) -> str:
    return orjson.dumps(key).decode() + ":" + orjson.dumps(value).decode()


def _where(tenant: str, f: ResponseFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = ["tenant = ?"]
    params: list[Any] = [tenant]
    if f.status:
        clauses.append(f"status IN ({', '.join('?' * len(f.status))})")
        params.extend(f.status)
    if f.background is not None:
        clauses.append("background = ?")
        params.append(f.background)
    if f.conversation_id is not None:
        clauses.append("conversation_id = ?")
        params.append(f.conversation_id)
    if f.previous_response_id is not None:
        clauses.append("previous_response_id = ?")
        params.append(f.previous_response_id)
    if f.id_prefix:
        escaped = f.id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("id LIKE ? ESCAPE '\\'")
        params.append(escaped + "%")
    if f.model is not None:
        clauses.append("response LIKE ? ESCAPE '\\'")
        params.append(_like(_pair("model", f.model)))
    for k, v in f.metadata.items():
        clauses.append("response LIKE ? ESCAPE '\\'")
        params.append(_like(_pair(k, v)))
    return clauses, params


async def keyset(db: Conn, table: str, payload: str, tenant: str, clauses: list[str], params: list[Any], *,
                  after: str | None, limit: int, order: Literal["asc", "desc"],
                  keep: Callable[[Sequence[Any]], bool]) -> tuple[list[Sequence[Any]], bool]:
    """Rows ``(created_at, insertion order, id, payload)`` that ``keep``
    accepts, in order after the cursor."""
    tiebreak = _INSERTION_ORDER[db.dialect.name]
    bound: tuple[Any, Any] | None = None
    if after is not None:
        found = await db.fetchrow(f"SELECT created_at, {tiebreak} FROM {table} WHERE tenant = ? AND id = ?",
                                  tenant, after)
        if found is None:
            raise UnknownCursor("after", after)
        bound = (found[0], found[1])
    cmp, direction = ("<", "DESC") if order == "desc" else (">", "ASC")
    kept: list[Sequence[Any]] = []
    batch = limit + 1
    while True:
        where, args = list(clauses), list(params)
        if bound is not None:
            # The first clause is a plain range both planners use on the index;
            # the second only sorts out the cursor's own second.
            where.append(f"created_at {cmp}= ? AND (created_at {cmp} ? OR {tiebreak} {cmp} ?)")
            args.extend((bound[0], bound[0], bound[1]))
        query = (f"SELECT created_at, {tiebreak}, id, {payload} FROM {table} WHERE {' AND '.join(where)} "
                 f"ORDER BY created_at {direction}, {tiebreak} {direction} LIMIT {batch}")
        rows = await db.fetch(query, *args)
        kept.extend(r for r in rows if keep(r))
        if len(kept) > limit or len(rows) < batch:
            return kept[:limit], len(kept) > limit
        bound = (rows[-1][0], rows[-1][1])
        batch = max(batch, BATCH)


async def list_responses(db: Conn, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                         where: ResponseFilter) -> Page:
    """The tenant's stored Response objects, newest first by default."""
    clauses, params = _where(tenant, where)
    exact = where.model is not None or bool(where.metadata)
    decoded: dict[str, dict[str, Any]] = {}

    def keep(row: Sequence[Any]) -> bool:
        if not exact:
            return True
        decoded[row[2]] = orjson.loads(row[3])
        return where.keeps(decoded[row[2]])

    rows, more = await keyset(db, "responses", "response", tenant, clauses, params, after=after, limit=limit,
                               order=order, keep=keep)
    return Page([decoded.get(r[2]) or orjson.loads(r[3]) for r in rows], more)


async def list_conversations(db: Conn, tenant: str, *, after: str | None, limit: int,
                             order: Literal["asc", "desc"]) -> Page:
    """The tenant's conversation objects, newest first by default."""
    rows, more = await keyset(db, "conversations", "metadata", tenant, ["tenant = ?"], [tenant], after=after,
                               limit=limit, order=order, keep=lambda r: True)
    return Page([{"id": r[2], "object": "conversation", "created_at": r[0], "metadata": orjson.loads(r[3])}
                 for r in rows], more)
