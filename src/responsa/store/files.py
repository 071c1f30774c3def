"""Uploaded files' rows (``files``) and, for the ``database`` blob backend,
their content (``file_chunks``): operations over a driver's ``Conn``,
written once for SQLite and PostgreSQL (migration 0007). ``SQLStore`` runs
each as one ``Driver.read``/``Driver.write``; ``responsa.files`` is the only
caller.

Every statement names the tenant (chunks are reached through their file's
row), and a file past its ``expires_at`` is treated as gone by every read,
so expiry needs no sweeper to be correct (``expired_files`` lets one reclaim
the space).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from responsa.store import listing
from responsa.store.base import Page
from responsa.store.driver import Conn

_COLUMNS = "filename, purpose, bytes, expires_at"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
INSERT_FILE = ("INSERT INTO files (tenant, id, created_at, expires_at, filename, purpose, bytes, storage) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
GET_FILE = (f"SELECT id, created_at, {_COLUMNS}, storage FROM files WHERE tenant = ? AND id = ? AND {_LIVE}")
DELETE_FILE = "DELETE FROM files WHERE tenant = ? AND id = ? RETURNING storage"
INSERT_CHUNK = "INSERT INTO file_chunks (file_id, n, data) VALUES (?, ?, ?)"
DELETE_CHUNKS = "DELETE FROM file_chunks WHERE file_id = ?"
GET_CHUNK = ("SELECT c.data FROM file_chunks c JOIN files f ON f.id = c.file_id "
             "WHERE f.tenant = ? AND c.file_id = ? AND c.n = ?")
EXPIRED = "SELECT tenant, id, storage FROM files WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"


def file_object(row: Sequence[Any]) -> dict[str, Any]:
    """OpenAI's ``FileObject`` from ``id, created_at, filename, purpose, bytes, expires_at``."""
    return {"id": row[0], "object": "file", "bytes": row[4], "created_at": row[1], "expires_at": row[5],
            "filename": row[2], "purpose": row[3], "status": "processed", "status_details": None}


async def create(db: Conn, tenant: str, file: dict[str, Any], storage: str, chunks: Iterable[bytes]) -> None:
    """The row, and (``database`` storage) the content's chunks, in the
    caller's transaction. ``chunks`` is read here, one chunk at a time."""
    await db.execute(INSERT_FILE, tenant, file["id"], file["created_at"], file["expires_at"], file["filename"],
                     file["purpose"], file["bytes"], storage)
    for n, data in enumerate(chunks):
        await db.execute(INSERT_CHUNK, file["id"], n, data)


async def get(db: Conn, tenant: str, file_id: str, now: int) -> tuple[dict[str, Any], str] | None:
    """``(FileObject, storage)``, or ``None`` (no such file of this tenant, or expired)."""
    row = await db.fetchrow(GET_FILE, tenant, file_id, now)
    return None if row is None else (file_object(row), row[6])


async def delete(db: Conn, tenant: str, file_id: str) -> str | None:
    """Delete the row and any stored chunks; the storage it used, ``None`` if there was none."""
    storage: str | None = await db.fetchval(DELETE_FILE, tenant, file_id)
    if storage is not None:
        await db.execute(DELETE_CHUNKS, file_id)
    return storage


async def chunk(db: Conn, tenant: str, file_id: str, n: int) -> bytes | None:
    data = await db.fetchval(GET_CHUNK, tenant, file_id, n)
    return None if data is None else bytes(data)


async def expired(db: Conn, now: int, limit: int) -> list[tuple[str, str, str]]:
    """``(tenant, id, storage)`` of files whose time ran out, oldest expiry first."""
    return [(r[0], r[1], r[2]) for r in await db.fetch(EXPIRED, now, limit)]


async def list_files(db: Conn, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                     purpose: str | None, now: int) -> Page:
    """The tenant's live files, newest first by default (the keyset pages of ``listing``)."""
    clauses, params = ["tenant = ?", _LIVE], [tenant, now]
    if purpose is not None:
        clauses.append("purpose = ?")
        params.append(purpose)
    rows, more = await listing.keyset(db, "files", _COLUMNS, tenant, clauses, params, after=after, limit=limit,
                                      order=order, keep=lambda r: True)
    return Page([file_object((r[2], r[0], *r[3:])) for r in rows], more)
