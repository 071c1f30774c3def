"""The SQL of every store operation, for SQLite and PostgreSQL alike
(written with ``?`` placeholders; the PostgreSQL driver numbers them), plus
the migration list and the row builders. One copy of every query, run by one
copy of every operation (``operations.py``), keeps the backends together."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

INSERT_RESPONSE = (
    "INSERT INTO responses (tenant, id, status, created_at, previous_response_id, conversation_id, "
    "background, idempotency_key, request, response, lease_owner, lease_expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_ITEM = "INSERT INTO items (response_id, tenant, role, position, id, item) VALUES (?, ?, ?, ?, ?, ?)"
FINISH_RESPONSE = "UPDATE responses SET status = ?, response = ? WHERE tenant = ? AND id = ?"
DELETE_OUTPUT = "DELETE FROM items WHERE response_id = ? AND tenant = ? AND role = 'output'"
GET_RESPONSE = "SELECT response FROM responses WHERE tenant = ? AND id = ?"
GET_REQUEST = "SELECT request FROM responses WHERE tenant = ? AND id = ?"
DELETE_ITEMS = "DELETE FROM items WHERE response_id = ? AND tenant = ?"
DELETE_RESPONSE = "DELETE FROM responses WHERE tenant = ? AND id = ?"
BY_IDEMPOTENCY = "SELECT id FROM responses WHERE tenant = ? AND idempotency_key = ?"
EXISTS = "SELECT 1 FROM responses WHERE tenant = ? AND id = ?"

# The previous_response_id chain: walk back with a recursive CTE; one row
# per hop (id, status), oldest hop first, except the tip's, which come with
# its items (inputs before outputs). The other hops' items are read only
# for the hops store/parsed.py does not keep (HOP_ITEMS): a turn that
# continues the response before it reads one statement either way.
CHAIN = """
WITH RECURSIVE chain (id, prev, status, depth) AS (
    SELECT id, previous_response_id, status, 0 FROM responses WHERE tenant = ? AND id = ?
    UNION ALL
    SELECT r.id, r.previous_response_id, r.status, c.depth + 1
    FROM responses r JOIN chain c ON r.id = c.prev
    WHERE r.tenant = ? AND c.depth < 10000
)
SELECT c.id, c.status, i.item FROM chain c LEFT JOIN items i ON c.depth = 0 AND i.response_id = c.id
ORDER BY c.depth DESC, i.role ASC, i.position ASC
"""
_HOP_ITEMS = ("SELECT response_id, item FROM items WHERE tenant = ? AND response_id {ids} "
              "ORDER BY response_id, role, position")
HOP_ITEMS = _HOP_ITEMS.format(ids="IN (SELECT value FROM json_each(?))")
"""The items of the hops whose ids are the JSON array parameter."""
HOP_ITEMS_ARRAYS = _HOP_ITEMS.format(ids="= ANY(?::text[])")
"""The same with the ids as an array parameter (PostgreSQL)."""

INPUT_ITEMS = "SELECT item FROM items WHERE response_id = ? AND tenant = ? AND role = 'input' ORDER BY position"
ITEMS_BY_ID = "SELECT id, item FROM items WHERE tenant = ? AND id IN ({marks})"


CREATE_MIGRATIONS = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
MIGRATION_APPLIED = "SELECT 1 FROM schema_migrations WHERE version = ?"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version) VALUES (?)"


def migrations(dialect: str = "sqlite") -> list[tuple[int, str]]:
    """``(version, sql)`` in order, from the packaged ``migrations/`` folder:
    ``NNNN_name.sql`` for every database, ``NNNN_name.<dialect>.sql`` where
    the databases need different DDL (vector stores: FTS5 and sqlite-vec
    tables on SQLite, tsvector and pgvector columns on PostgreSQL)."""
    folder = resources.files("responsa.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        parts = entry.name.split(".")
        if parts[-1] != "sql" or (len(parts) == 3 and parts[1] != dialect) or len(parts) > 3:
            continue
        found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def split_statements(script: str) -> list[str]:
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def response_row(tenant: str, response: dict[str, Any], request: dict[str, Any],
                 idempotency_key: str | None, lease: tuple[str, float] | None = None) -> tuple[Any, ...]:
    """``INSERT_RESPONSE``'s parameters; ``lease`` (owner, expiry) is
    written by the same statement (a leased row costs no second one)."""
    owner, expires = lease if lease is not None else (None, None)
    return (tenant, response["id"], response["status"], response["created_at"],
            response.get("previous_response_id"), response.get("conversation_id"),
            bool(response.get("background")), idempotency_key, dumps(request), dumps(response), owner, expires)


# A finished response and its items in ONE statement (databases with array
# parameters, ``Dialect.arrays``): the CTE's INSERT runs to completion
# whatever reads it, and the items' foreign key is checked at the end of
# the statement, when the response row exists. Parameters: ``response_row``
# then ``item_arrays``.
RECORD_RESPONSE_ARRAYS = f"""
WITH r AS ({INSERT_RESPONSE} RETURNING tenant, id)
INSERT INTO items (response_id, tenant, role, position, id, item)
SELECT r.id, r.tenant, x.role, x.position, x.id, x.item
FROM r, unnest(?::text[], ?::int[], ?::text[], ?::text[]) AS x (role, position, id, item)
"""


def item_arrays(*groups: tuple[str, list[dict[str, Any]]]) -> tuple[list[Any], ...]:
    """``(roles, positions, ids, items)`` columns of ``(role, items)`` groups, for ``RECORD_RESPONSE_ARRAYS``."""
    roles: list[str] = []
    positions: list[int] = []
    ids: list[str] = []
    payloads: list[str] = []
    for role, items in groups:
        for i, it in enumerate(items):
            roles.append(role)
            positions.append(i)
            ids.append(it.get("id", ""))
            payloads.append(dumps(it))
    return roles, positions, ids, payloads


def item_rows(tenant: str, response_id: str, role: str, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(response_id, tenant, role, i, it.get("id", ""), dumps(it)) for i, it in enumerate(items)]


# Conversations. Every statement that touches items checks the tenant on the
# conversation row; appends reserve positions by bumping the row's counter
# (the UPDATE takes the row lock on PostgreSQL) and insert in that transaction.
INSERT_CONVERSATION = "INSERT INTO conversations (tenant, id, created_at, metadata) VALUES (?, ?, ?, ?)"
GET_CONVERSATION = "SELECT id, created_at, metadata FROM conversations WHERE tenant = ? AND id = ?"
UPDATE_CONVERSATION = (
    "UPDATE conversations SET metadata = ? WHERE tenant = ? AND id = ? RETURNING id, created_at, metadata")
DELETE_CONVERSATION = "DELETE FROM conversations WHERE tenant = ? AND id = ?"
_OWN_CONVERSATION = "conversation_id IN (SELECT id FROM conversations WHERE tenant = ? AND id = ?)"
DELETE_CONVERSATION_ITEMS = f"DELETE FROM conversation_items WHERE {_OWN_CONVERSATION}"
RESERVE_POSITIONS = (
    "UPDATE conversations SET next_position = next_position + ? WHERE tenant = ? AND id = ? RETURNING next_position")
INSERT_CONVERSATION_ITEM = (
    "INSERT INTO conversation_items (conversation_id, position, item_id, response_id, item) VALUES (?, ?, ?, ?, ?)")
# One round trip: no row = no such conversation, one NULL row = empty.
CONVERSATION_CONTEXT = (
    "SELECT ci.item FROM conversations c LEFT JOIN conversation_items ci ON ci.conversation_id = c.id "
    "WHERE c.tenant = ? AND c.id = ? ORDER BY ci.position")
CONVERSATION_ITEM_POSITION = (
    "SELECT MIN(ci.position) FROM conversation_items ci JOIN conversations c ON c.id = ci.conversation_id "
    "WHERE c.tenant = ? AND c.id = ? AND ci.item_id = ?")
CONVERSATION_ITEMS_ASC = (
    "SELECT item FROM conversation_items WHERE conversation_id = ? AND position > ? ORDER BY position ASC LIMIT ?")
CONVERSATION_ITEMS_DESC = (
    "SELECT item FROM conversation_items WHERE conversation_id = ? AND position < ? ORDER BY position DESC LIMIT ?")
GET_CONVERSATION_ITEM = (
    "SELECT ci.item FROM conversation_items ci JOIN conversations c ON c.id = ci.conversation_id "
    "WHERE c.tenant = ? AND c.id = ? AND ci.item_id = ? ORDER BY ci.position LIMIT 1")
DELETE_CONVERSATION_ITEM = f"DELETE FROM conversation_items WHERE {_OWN_CONVERSATION} AND item_id = ?"


def conversation_item_rows(conversation_id: str, first_position: int, items: list[dict[str, Any]],
                           response_id: str | None) -> list[tuple[Any, ...]]:
    return [(conversation_id, first_position + i, it.get("id", ""), response_id, dumps(it))
            for i, it in enumerate(items)]


# Prompts: tenant '' holds the server's seeded prompts, readable by all.
INSERT_PROMPT = "INSERT INTO prompts (tenant, id, created_at, latest_version) VALUES (?, ?, ?, 1)"
PROMPT_OWNER = "SELECT tenant FROM prompts WHERE tenant IN (?, '') AND id = ? ORDER BY tenant DESC LIMIT 1"
NEXT_PROMPT_VERSION = (
    "UPDATE prompts SET latest_version = latest_version + 1 WHERE tenant = ? AND id = ? RETURNING latest_version")
INSERT_PROMPT_VERSION = "INSERT INTO prompt_versions (tenant, prompt_id, version, prompt) VALUES (?, ?, ?, ?)"
GET_PROMPT_VERSION = (
    "SELECT v.prompt FROM prompt_versions v JOIN prompts p ON p.tenant = v.tenant AND p.id = v.prompt_id "
    "WHERE p.tenant IN (?, '') AND p.id = ? AND v.version = COALESCE(?, p.latest_version) "
    "ORDER BY p.tenant DESC LIMIT 1")
LATEST_PROMPTS = (
    "SELECT v.prompt FROM prompt_versions v JOIN prompts p ON p.tenant = v.tenant AND p.id = v.prompt_id "
    "AND v.version = p.latest_version WHERE p.tenant IN (?, '') ORDER BY p.created_at, p.id")
PROMPT_VERSIONS = "SELECT prompt FROM prompt_versions WHERE tenant = ? AND prompt_id = ? ORDER BY version"
DELETE_PROMPT_VERSIONS = "DELETE FROM prompt_versions WHERE tenant = ? AND prompt_id = ?"
DELETE_PROMPT = "DELETE FROM prompts WHERE tenant = ? AND id = ?"

# Background jobs (engine/background.py): the response row is the job;
# ``lease_owner``/``lease_expires_at`` say which replica runs it and until
# when. Every write of a job is conditional on still holding it, so a job
# cancelled or swept elsewhere can never be overwritten by its old runner.
_ACTIVE = "status IN ('queued', 'in_progress')"
TOUCH_JOB = ("UPDATE responses SET status = COALESCE(?, status), response = COALESCE(?, response) "
             f"WHERE tenant = ? AND id = ? AND lease_owner = ? AND {_ACTIVE}")
FINISH_JOB = ("UPDATE responses SET status = ?, response = ?, lease_owner = NULL, lease_expires_at = NULL "
              f"WHERE tenant = ? AND id = ? AND lease_owner = ? AND {_ACTIVE}")
CLOSE_JOB = ("UPDATE responses SET status = ?, response = ?, lease_owner = NULL, lease_expires_at = NULL "
             f"WHERE tenant = ? AND id = ? AND {_ACTIVE} AND lease_expires_at < ?")
RENEW_LEASES = f"UPDATE responses SET lease_expires_at = ? WHERE lease_owner = ? AND {_ACTIVE}"
EXPIRED_JOBS = (f"SELECT tenant, id, status FROM responses WHERE {_ACTIVE} AND lease_expires_at < ? "
                "ORDER BY created_at LIMIT ?")
CLAIM_JOB = ("UPDATE responses SET lease_owner = ?, lease_expires_at = ? "
             "WHERE tenant = ? AND id = ? AND status = 'queued' AND lease_expires_at < ?")
# The same claim where the database can skip locked rows (PostgreSQL): a job
# whose row another replica holds locked (claiming or closing it right now)
# is skipped, not waited for. The plain conditional UPDATE is just as safe,
# but would queue every sweeper on that row lock only to find the job taken.
CLAIM_JOB_SKIP_LOCKED = (
    "UPDATE responses SET lease_owner = ?, lease_expires_at = ? WHERE id = ("
    "SELECT id FROM responses WHERE tenant = ? AND id = ? AND status = 'queued' AND lease_expires_at < ? "
    "FOR UPDATE SKIP LOCKED)")
INSERT_EVENT = "INSERT INTO response_events (response_id, sequence_number, event) VALUES (?, ?, ?)"
LAST_EVENT = "SELECT MAX(sequence_number) FROM response_events WHERE response_id = ?"
EVENTS_AFTER = ("SELECT e.event FROM response_events e JOIN responses r ON r.id = e.response_id "
                "WHERE r.tenant = ? AND e.response_id = ? AND e.sequence_number > ? ORDER BY e.sequence_number")


def event_rows(response_id: str, events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(response_id, ev["sequence_number"], dumps(ev)) for ev in events]


def numbered(events: list[dict[str, Any]], last: int | None) -> list[dict[str, Any]]:
    """``events`` renumbered to follow sequence number ``last`` (``None``: none yet)."""
    start = -1 if last is None else last
    return [{**ev, "sequence_number": start + 1 + i} for i, ev in enumerate(events)]


INSERT_SECRET = "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
GET_SECRET = "SELECT value FROM server_secrets WHERE name = ?"
