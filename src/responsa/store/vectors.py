"""Vector stores' rows, chunks and search legs: operations over a driver's
``Conn`` (``store/driver.py``), written once for SQLite and PostgreSQL
(migration 0210); ``VectorStoreDB`` runs each as one ``Driver.read`` or
``Driver.write``. ``responsa.vectorstores`` is the only caller.

The two databases differ only in the search structures, and only in the
functions marked so below:

- keywords: SQLite's FTS5 table ranks with ``bm25``; PostgreSQL's generated
  ``tsvector`` with ``ts_rank`` (both English stemming, any query term may match);
- vectors: SQLite's ``vec0`` table of the store's dimension (sqlite-vec,
  partitioned by vector store, exact K nearest) and PostgreSQL's pgvector
  column with ``<=>``; both rank by cosine distance, exactly. sqlite-vec
  0.1.9 has no ANN index (DiskANN/IVF are in its 0.1.10 alphas). A pgvector
  HNSW index was measured and not kept (commit cf8991a, README "Retrieval
  speed"): at ``ef_search`` 40 it returned a third (10k chunks) to a
  seventh (100k) of the exact top 10 on random vectors, and made inserts
  3-7x slower.

Every statement names the tenant or reaches rows through a vector store
the tenant owns. A file's row is also its ingestion job: it holds a lease
like a background response (``lease_owner``/``lease_expires_at``), and its
chunks are inserted in the same transaction that marks it completed, only
while its runner still holds it, so a search never sees half a file and a
cancelled or re-run job never leaves chunks behind.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from responsa.store.base import UnknownCursor
from responsa.store.driver import Conn, Driver, Row

FILE_COLUMNS = ("vector_store_id, id, created_at, status, batch_id, filename, attributes, chunking, usage_bytes, "
                "last_error")
VEC_K_MAX = 4096
"""sqlite-vec's largest ``k``."""


@dataclass(slots=True, frozen=True)
class StoreRow:
    id: str
    created_at: int
    body: dict[str, Any]
    embedding_model: str
    dimensions: int
    last_active_at: int
    counts: dict[str, int]
    usage_bytes: int


@dataclass(slots=True, frozen=True)
class FileRow:
    vector_store_id: str
    id: str
    created_at: int
    status: str
    batch_id: str | None
    filename: str
    attributes: dict[str, Any]
    chunking: dict[str, Any]
    usage_bytes: int
    last_error: dict[str, Any] | None


@dataclass(slots=True, frozen=True)
class NewFile:
    id: str
    filename: str
    attributes: dict[str, Any]
    chunking: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Chunk:
    id: int
    vector_store_id: str
    file_id: str
    position: int
    text: str


def _file(row: Row) -> FileRow:
    return FileRow(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]), orjson.loads(row[7]),
                   row[8], None if row[9] is None else orjson.loads(row[9]))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _tiebreak(db: Conn) -> str:
    """Insertion order within one second (as ``store/listing.py``)."""
    return "rowid" if db.dialect.name == "sqlite" else "seq"


def vec_table(dimensions: int) -> str:
    return f"vector_store_vec_{int(dimensions)}"


async def _page(db: Conn, table: str, where: str, params: list[Any], select: str, *, after: str | None,
                before: str | None, limit: int, order: Literal["asc", "desc"]) -> tuple[list[Row], bool]:
    """A keyset page on ``(created_at, insertion order)`` under the one
    pagination rule (``store/paging.py``): what follows ``after`` and
    precedes ``before`` in ``order``, ``limit`` at most; a cursor naming no
    row of ``where`` is ``UnknownCursor``."""
    tb = _tiebreak(db)
    clauses, args = [where], list(params)
    for param, cursor, forward in (("after", after, True), ("before", before, False)):
        if cursor is None:
            continue
        found = await db.fetchrow(f"SELECT created_at, {tb} FROM {table} WHERE {where} AND id = ?", *params, cursor)
        if found is None:
            raise UnknownCursor(param, cursor)
        cmp = ">" if (order == "asc") == forward else "<"
        clauses.append(f"(created_at {cmp} ? OR (created_at = ? AND {tb} {cmp} ?))")
        args.extend((found[0], found[0], found[1]))
    direction = "ASC" if order == "asc" else "DESC"
    rows = await db.fetch(f"SELECT {select} FROM {table} WHERE {' AND '.join(clauses)} "
                          f"ORDER BY created_at {direction}, {tb} {direction} LIMIT {int(limit) + 1}", *args)
    return rows[:limit], len(rows) > limit


_COUNTS = ("SELECT vector_store_id, status, COUNT(*), SUM(usage_bytes) FROM vector_store_files "
           "WHERE vector_store_id IN ({marks}) GROUP BY vector_store_id, status")
_STORE = "id, created_at, body, embedding_model, dimensions, last_active_at"


async def _stores(db: Conn, rows: list[Row]) -> list[StoreRow]:
    """Rows of ``vector_stores`` with their files' counts and bytes (one query)."""
    if not rows:
        return []
    stats: dict[str, tuple[dict[str, int], int]] = {r[0]: ({}, 0) for r in rows}
    for vid, status, n, used in await db.fetch(_COUNTS.format(marks=_marks(len(rows))), *[r[0] for r in rows]):
        counts, total = stats[vid]
        counts[status] = int(n)
        stats[vid] = (counts, total + int(used or 0))
    return [StoreRow(r[0], r[1], orjson.loads(r[2]), r[3], r[4], r[5], *stats[r[0]]) for r in rows]


async def _delete_chunks(db: Conn, vector_store_id: str, file_id: str | None) -> None:
    """The chunks of one file (or of the whole store), from every search structure."""
    scope, args = "vector_store_id = ?", [vector_store_id]
    if file_id is not None:
        scope, args = scope + " AND file_id = ?", [*args, file_id]
    if db.dialect.name == "sqlite":
        dims = await db.fetchval("SELECT dimensions FROM vector_stores WHERE id = ?", vector_store_id)
        ids = [(r[0],) for r in await db.fetch(f"SELECT id FROM vector_store_chunks WHERE {scope}", *args)]
        if ids and dims is not None:
            await db.execute("INSERT INTO vector_store_chunks_fts (vector_store_chunks_fts, rowid, text) "
                             f"SELECT 'delete', id, text FROM vector_store_chunks WHERE {scope}", *args)
            await db.executemany(f"DELETE FROM {vec_table(dims)} WHERE rowid = ?", ids)
    await db.execute(f"DELETE FROM vector_store_chunks WHERE {scope}", *args)


async def _insert_chunks(db: Conn, vector_store_id: str, file_id: str, dims: int, texts: Sequence[str],
                         vectors: Sequence[Sequence[float]]) -> None:
    if db.dialect.name == "sqlite":
        first = int(await db.fetchval("SELECT COALESCE(MAX(id), 0) FROM vector_store_chunks")) + 1
        ids = range(first, first + len(texts))
        await db.executemany("INSERT INTO vector_store_chunks (id, vector_store_id, file_id, position, text) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [(ids[n], vector_store_id, file_id, n, t) for n, t in enumerate(texts)])
        await db.executemany("INSERT INTO vector_store_chunks_fts (rowid, text) VALUES (?, ?)",
                             [(ids[n], t) for n, t in enumerate(texts)])
        pack = struct.Struct(f"{dims}f").pack
        await db.executemany(f"INSERT INTO {vec_table(dims)} (rowid, embedding, vector_store_id, file_id) "
                             "VALUES (?, ?, ?, ?)",
                             [(i, pack(*v), vector_store_id, file_id) for i, v in zip(ids, vectors, strict=True)])
        return
    await db.executemany("INSERT INTO vector_store_chunks (vector_store_id, file_id, position, text, embedding) "
                         "VALUES (?, ?, ?, ?, CAST(? AS vector))",
                         [(vector_store_id, file_id, n, t, "[" + ",".join(map(repr, v)) + "]")
                          for n, (t, v) in enumerate(zip(texts, vectors, strict=True))])


_WORD = re.compile(r"\w+")
MAX_TERMS = 64


_STOP = (
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can did do does doing down during each few for from further had has have having he her here "
    "hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now "
    "of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with you your yours yourself yourselves")
STOP_WORDS = frozenset(_STOP.split())
"""PostgreSQL's ``english`` configuration drops these from a query; SQLite's
FTS5 would match (and score) nearly every chunk on them: both searches skip
them, so they rank alike and a question's filler words cost nothing."""


def query_terms(text: str) -> list[str]:
    """The words of a keyword query (any may match), lower-cased, once each, without stop words."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        seen.setdefault(word, None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


async def keyword_leg(db: Conn, vector_store_id: str, terms: list[str], k: int,
                      files: list[str] | None) -> list[tuple[int, float]]:
    """``(chunk id, score)`` of the ``k`` best keyword matches, best first
    (dialect-specific: bm25 on SQLite, ts_rank on PostgreSQL)."""
    if not terms or files == []:
        return []
    only = "" if files is None else f" AND c.file_id IN ({_marks(len(files))})"
    if db.dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = await db.fetch(
            "SELECT c.id, bm25(vector_store_chunks_fts) AS s FROM vector_store_chunks_fts "
            "JOIN vector_store_chunks c ON c.id = vector_store_chunks_fts.rowid "
            f"WHERE vector_store_chunks_fts MATCH ? AND c.vector_store_id = ?{only} ORDER BY s LIMIT ?",
            match, vector_store_id, *(files or ()), k)
        return [(r[0], -float(r[1])) for r in rows]
    tsquery = " | ".join(f"'{t}'" for t in terms)
    rows = await db.fetch(
        "SELECT c.id, ts_rank(c.tsv, q, 1) AS s FROM vector_store_chunks c, to_tsquery('english', ?) q "
        f"WHERE c.vector_store_id = ? AND c.tsv @@ q{only} ORDER BY s DESC, c.id LIMIT ?",
        tsquery, vector_store_id, *(files or ()), k)
    return [(r[0], float(r[1])) for r in rows]


async def vector_leg(db: Conn, vector_store_id: str, dims: int, vector: Sequence[float], k: int,
                     files: list[str] | None) -> list[tuple[int, float]]:
    """``(chunk id, cosine similarity)`` of the ``k`` nearest chunks, nearest
    first, exact (dialect-specific: sqlite-vec ``vec0`` / pgvector ``<=>``)."""
    if files == []:
        return []
    if db.dialect.name == "sqlite":
        only = "" if files is None else f" AND file_id IN ({_marks(len(files))})"
        rows = await db.fetch(
            f"SELECT rowid, distance FROM {vec_table(dims)} WHERE embedding MATCH ? AND k = ? "
            f"AND vector_store_id = ?{only} ORDER BY distance",
            struct.pack(f"{len(vector)}f", *vector), min(k, VEC_K_MAX), vector_store_id, *(files or ()))
    else:
        only = "" if files is None else f" AND file_id IN ({_marks(len(files))})"
        rows = await db.fetch(
            "SELECT id, embedding <=> CAST(? AS vector) AS d FROM vector_store_chunks "
            f"WHERE vector_store_id = ?{only} ORDER BY d, id LIMIT ?",
            "[" + ",".join(map(repr, vector)) + "]", vector_store_id, *(files or ()), k)
    return [(r[0], 1.0 - float(r[1])) for r in rows]


class VectorStoreDB:
    """The operations above, each in one ``Driver.read``/``Driver.write``."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    # -- vector stores --------------------------------------------------------

    async def create_store(self, tenant: str, vector_store_id: str, created_at: int, body: dict[str, Any],
                           embedding_model: str, dimensions: int, expires_at: int | None) -> None:
        async def txn(db: Conn) -> None:
            await db.execute("INSERT INTO vector_stores (tenant, id, created_at, body, embedding_model, dimensions, "
                             "last_active_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tenant, vector_store_id,
                             created_at, _dumps(body), embedding_model, dimensions, created_at, expires_at)
            if db.dialect.name == "sqlite":
                await db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {vec_table(dimensions)} USING vec0("
                                 f"embedding float[{int(dimensions)}] distance_metric=cosine, "
                                 "vector_store_id text partition key, file_id text)")

        await self.driver.write(txn)

    async def get_store(self, tenant: str, vector_store_id: str) -> StoreRow | None:
        async def read(db: Conn) -> list[StoreRow]:
            rows = await db.fetch(f"SELECT {_STORE} FROM vector_stores WHERE tenant = ? AND id = ?", tenant,
                                  vector_store_id)
            return await _stores(db, rows)

        found = await self.driver.read(read)
        return found[0] if found else None

    async def get_stores(self, tenant: str, ids: Sequence[str]) -> list[StoreRow]:
        """The tenant's stores among ``ids`` (missing ones left out)."""
        async def read(db: Conn) -> list[StoreRow]:
            rows = await db.fetch(f"SELECT {_STORE} FROM vector_stores WHERE tenant = ? AND id IN ({_marks(len(ids))})",
                                  tenant, *ids)
            return await _stores(db, rows)

        return await self.driver.read(read) if ids else []

    async def update_store(self, tenant: str, vector_store_id: str, body: dict[str, Any],
                           last_active_at: int, expires_at: int | None) -> bool:
        return await self.driver.write(lambda db: db.execute(
            "UPDATE vector_stores SET body = ?, last_active_at = ?, expires_at = ? WHERE tenant = ? AND id = ?",
            _dumps(body), last_active_at, expires_at, tenant, vector_store_id)) > 0

    async def touch_stores(self, tenant: str, ids: Sequence[str], now: int) -> None:
        """``last_active_at`` (what ``expires_after`` counts from) after a
        search; ``expires_at`` moves with it (NULL, never, stays NULL)."""
        await self.driver.write(lambda db: db.execute(
            "UPDATE vector_stores SET expires_at = expires_at + (? - last_active_at), last_active_at = ? "
            f"WHERE tenant = ? AND id IN ({_marks(len(ids))}) AND last_active_at < ?", now, now, tenant, *ids, now))

    async def expired_stores(self, now: int, limit: int) -> list[tuple[str, str]]:
        """``(tenant, vector_store_id)`` of stores whose ``expires_at`` has passed, longest expired first."""
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT tenant, id FROM vector_stores WHERE expires_at IS NOT NULL AND expires_at <= ? "
            "ORDER BY expires_at LIMIT ?", now, limit))
        return [(r[0], r[1]) for r in rows]

    async def delete_store(self, tenant: str, vector_store_id: str, expired_by: int | None = None) -> bool:
        """Delete the store with its chunks, files' links and batches; with
        ``expired_by``, only if it expired by then (a search that touched it
        meanwhile keeps it)."""
        expired = "" if expired_by is None else " AND expires_at <= ?"

        async def txn(db: Conn) -> bool:
            if await db.fetchval(f"SELECT 1 FROM vector_stores WHERE tenant = ? AND id = ?{expired}", tenant,
                                 vector_store_id, *(() if expired_by is None else (expired_by,))) is None:
                return False
            await _delete_chunks(db, vector_store_id, None)
            await db.execute("DELETE FROM vector_store_files WHERE vector_store_id = ?", vector_store_id)
            await db.execute("DELETE FROM vector_store_file_batches WHERE vector_store_id = ?", vector_store_id)
            await db.execute("DELETE FROM vector_stores WHERE id = ?", vector_store_id)
            return True

        return await self.driver.write(txn)

    async def list_stores(self, tenant: str, *, after: str | None, before: str | None, limit: int,
                          order: Literal["asc", "desc"]) -> tuple[list[StoreRow], bool]:
        async def read(db: Conn) -> tuple[list[StoreRow], bool]:
            rows, more = await _page(db, "vector_stores", "tenant = ?", [tenant], _STORE, after=after,
                                     before=before, limit=limit, order=order)
            return await _stores(db, rows), more

        return await self.driver.read(read)

    # -- files ------------------------------------------------------------------

    async def add_files(self, tenant: str, vector_store_id: str, files: Sequence[NewFile], created_at: int,
                        batch_id: str | None, lease: tuple[str, float],
                        batch_created: bool = False) -> tuple[list[FileRow], set[str]] | None:
        """Attach ``files`` as ingestion jobs held by ``lease`` (a file the
        store already has is left as it is); with ``batch_id`` and
        ``batch_created``, the batch's row too. The files' rows and the ids
        of those attached now (the jobs the caller holds); ``None`` if the
        tenant has no such vector store."""
        ids = [f.id for f in files]

        async def txn(db: Conn) -> tuple[list[FileRow], set[str]] | None:
            if await db.fetchval("SELECT 1 FROM vector_stores WHERE tenant = ? AND id = ?", tenant,
                                 vector_store_id) is None:
                return None
            had = {r[0] for r in await db.fetch("SELECT id FROM vector_store_files WHERE vector_store_id = ? "
                                                f"AND id IN ({_marks(len(ids))})", vector_store_id, *ids)}
            if batch_created:
                await db.execute("INSERT INTO vector_store_file_batches (tenant, id, vector_store_id, created_at) "
                                 "VALUES (?, ?, ?, ?)", tenant, batch_id, vector_store_id, created_at)
            await db.executemany(
                "INSERT INTO vector_store_files (tenant, vector_store_id, id, created_at, status, batch_id, "
                "filename, attributes, chunking, lease_owner, lease_expires_at) "
                "VALUES (?, ?, ?, ?, 'in_progress', ?, ?, ?, ?, ?, ?) ON CONFLICT (vector_store_id, id) DO NOTHING",
                [(tenant, vector_store_id, f.id, created_at, batch_id, f.filename, _dumps(f.attributes),
                  _dumps(f.chunking), *lease) for f in files if f.id not in had])
            rows = await db.fetch(f"SELECT {FILE_COLUMNS} FROM vector_store_files WHERE vector_store_id = ? "
                                  f"AND id IN ({_marks(len(ids))})", vector_store_id, *ids)
            return [_file(r) for r in rows], set(ids) - had

        return await self.driver.write(txn)

    async def get_file(self, tenant: str, vector_store_id: str, file_id: str) -> FileRow | None:
        row = await self.driver.read(lambda db: db.fetchrow(
            f"SELECT {FILE_COLUMNS} FROM vector_store_files WHERE tenant = ? AND vector_store_id = ? AND id = ?",
            tenant, vector_store_id, file_id))
        return None if row is None else _file(row)

    async def list_files(self, tenant: str, vector_store_id: str, *, after: str | None, before: str | None,
                         limit: int, order: Literal["asc", "desc"], status: str | None,
                         batch_id: str | None) -> tuple[list[FileRow], bool]:
        where, params = "tenant = ? AND vector_store_id = ?", [tenant, vector_store_id]
        if status is not None:
            where, params = where + " AND status = ?", [*params, status]
        if batch_id is not None:
            where, params = where + " AND batch_id = ?", [*params, batch_id]

        async def read(db: Conn) -> tuple[list[Row], bool]:
            return await _page(db, "vector_store_files", where, params, FILE_COLUMNS, after=after, before=before,
                               limit=limit, order=order)

        rows, more = await self.driver.read(read)
        return [_file(r) for r in rows], more

    async def update_attributes(self, tenant: str, vector_store_id: str, file_id: str,
                                attributes: dict[str, Any]) -> FileRow | None:
        async def txn(db: Conn) -> FileRow | None:
            await db.execute("UPDATE vector_store_files SET attributes = ? WHERE tenant = ? AND vector_store_id = ? "
                             "AND id = ?", _dumps(attributes), tenant, vector_store_id, file_id)
            row = await db.fetchrow(f"SELECT {FILE_COLUMNS} FROM vector_store_files WHERE tenant = ? "
                                    "AND vector_store_id = ? AND id = ?", tenant, vector_store_id, file_id)
            return None if row is None else _file(row)

        return await self.driver.write(txn)

    async def delete_file(self, tenant: str, vector_store_id: str, file_id: str) -> bool:
        async def txn(db: Conn) -> bool:
            if not await db.execute("DELETE FROM vector_store_files WHERE tenant = ? AND vector_store_id = ? "
                                    "AND id = ?", tenant, vector_store_id, file_id):
                return False
            await _delete_chunks(db, vector_store_id, file_id)
            return True

        return await self.driver.write(txn)

    async def file_texts(self, tenant: str, vector_store_id: str, file_id: str) -> list[str]:
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT c.text FROM vector_store_chunks c JOIN vector_store_files f ON f.vector_store_id = "
            "c.vector_store_id AND f.id = c.file_id WHERE f.tenant = ? AND c.vector_store_id = ? AND c.file_id = ? "
            "ORDER BY c.position", tenant, vector_store_id, file_id))
        return [r[0] for r in rows]

    # -- batches ------------------------------------------------------------------

    async def get_batch(self, tenant: str, vector_store_id: str,
                        batch_id: str) -> tuple[int, bool, dict[str, int]] | None:
        """``(created_at, cancelled, counts by status)``."""
        async def read(db: Conn) -> tuple[int, bool, dict[str, int]] | None:
            row = await db.fetchrow("SELECT created_at, cancelled FROM vector_store_file_batches WHERE tenant = ? "
                                    "AND vector_store_id = ? AND id = ?", tenant, vector_store_id, batch_id)
            if row is None:
                return None
            counts = await db.fetch("SELECT status, COUNT(*) FROM vector_store_files WHERE vector_store_id = ? "
                                    "AND batch_id = ? GROUP BY status", vector_store_id, batch_id)
            return row[0], bool(row[1]), {r[0]: int(r[1]) for r in counts}

        return await self.driver.read(read)

    async def cancel_batch(self, tenant: str, vector_store_id: str, batch_id: str) -> bool:
        """Mark the batch cancelled and its unfinished files ``cancelled``
        (their runners' conditional writes then fail, leaving no chunks)."""
        async def txn(db: Conn) -> bool:
            if not await db.execute("UPDATE vector_store_file_batches SET cancelled = ? WHERE tenant = ? "
                                    "AND vector_store_id = ? AND id = ?", True, tenant, vector_store_id, batch_id):
                return False
            await db.execute("UPDATE vector_store_files SET status = 'cancelled', lease_owner = NULL, "
                             "lease_expires_at = NULL WHERE vector_store_id = ? AND batch_id = ? "
                             "AND status = 'in_progress'", vector_store_id, batch_id)
            return True

        return await self.driver.write(txn)

    # -- ingestion jobs (the lease pattern of engine/background.py) ----------------

    async def finish_file(self, tenant: str, vector_store_id: str, file_id: str, owner: str, dims: int,
                          texts: Sequence[str], vectors: Sequence[Sequence[float]], usage_bytes: int) -> bool:
        """Store the chunks and mark the file completed, in one transaction,
        only while ``owner`` still holds the job; ``False`` otherwise."""
        async def txn(db: Conn) -> bool:
            if not await db.execute(
                    "UPDATE vector_store_files SET status = 'completed', usage_bytes = ?, last_error = NULL, "
                    "lease_owner = NULL, lease_expires_at = NULL WHERE tenant = ? AND vector_store_id = ? AND id = ? "
                    "AND status = 'in_progress' AND lease_owner = ?", usage_bytes, tenant, vector_store_id, file_id,
                    owner):
                return False
            await _delete_chunks(db, vector_store_id, file_id)
            if texts:
                await _insert_chunks(db, vector_store_id, file_id, dims, texts, vectors)
            return True

        return await self.driver.write(txn)

    async def fail_file(self, tenant: str, vector_store_id: str, file_id: str, owner: str | None,
                        error: dict[str, str]) -> bool:
        """Mark the job failed with ``last_error`` while ``owner`` holds it
        (``None``: whoever holds it, for a job whose lease ran out)."""
        held = "" if owner is None else " AND lease_owner = ?"
        return await self.driver.write(lambda db: db.execute(
            "UPDATE vector_store_files SET status = 'failed', last_error = ?, lease_owner = NULL, "
            "lease_expires_at = NULL WHERE tenant = ? AND vector_store_id = ? AND id = ? AND status = 'in_progress'"
            + held, _dumps(error), tenant, vector_store_id, file_id, *(() if owner is None else (owner,)))) > 0

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        await self.driver.write(lambda db: db.execute(
            "UPDATE vector_store_files SET lease_expires_at = ? WHERE lease_owner = ? AND status = 'in_progress'",
            expires_at, owner))

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str, int]]:
        """``(tenant, vector_store_id, file_id, attempts)`` of jobs whose lease ran out."""
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT tenant, vector_store_id, id, attempts FROM vector_store_files WHERE status = 'in_progress' "
            "AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?", now, limit))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def claim_job(self, tenant: str, vector_store_id: str, file_id: str, owner: str, now: float,
                        expires_at: float) -> bool:
        """Take over a job whose lease ran out (counting the attempt); ``True`` if ours now."""
        return await self.driver.write(lambda db: db.execute(
            "UPDATE vector_store_files SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 "
            "WHERE tenant = ? AND vector_store_id = ? AND id = ? AND status = 'in_progress' "
            "AND lease_expires_at < ?", owner, expires_at, tenant, vector_store_id, file_id, now)) > 0

    # -- search ------------------------------------------------------------------------

    async def searchable_files(self, tenant: str, ids: Sequence[str]) -> list[tuple[str, str, str, dict[str, Any]]]:
        """``(vector_store_id, file_id, filename, attributes)`` of the completed files of the stores."""
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT vector_store_id, id, filename, attributes FROM vector_store_files WHERE tenant = ? "
            f"AND vector_store_id IN ({_marks(len(ids))}) AND status = 'completed'", tenant, *ids))
        return [(r[0], r[1], r[2], orjson.loads(r[3])) for r in rows]

    async def run_legs(self, legs: Sequence[Leg]) -> list[list[tuple[int, float]]]:
        """Every search leg, then nothing else, on one connection (one thread hop on SQLite)."""
        async def read(db: Conn) -> list[list[tuple[int, float]]]:
            out = []
            for leg in legs:
                if leg.vector is not None:
                    out.append(await vector_leg(db, leg.vector_store_id, leg.dims, leg.vector, leg.k, leg.files))
                else:
                    out.append(await keyword_leg(db, leg.vector_store_id, leg.terms or [], leg.k, leg.files))
            return out

        return await self.driver.read(read)

    async def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT id, vector_store_id, file_id, position, text FROM vector_store_chunks "
            f"WHERE id IN ({_marks(len(ids))})", *ids))
        return {r[0]: Chunk(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    async def file_info(self, tenant: str,
                        pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
        """``(filename, attributes)`` of the given ``(vector_store_id, file_id)`` pairs."""
        if not pairs:
            return {}
        stores = sorted({p[0] for p in pairs})
        files = sorted({p[1] for p in pairs})
        rows = await self.driver.read(lambda db: db.fetch(
            "SELECT vector_store_id, id, filename, attributes FROM vector_store_files WHERE tenant = ? "
            f"AND vector_store_id IN ({_marks(len(stores))}) AND id IN ({_marks(len(files))})",
            tenant, *stores, *files))
        return {(r[0], r[1]): (r[2], orjson.loads(r[3])) for r in rows}


@dataclass(slots=True, frozen=True)
class Leg:
    """One ranked list a search asks for: vectors (``vector`` set) or keywords (``terms``)."""

    vector_store_id: str
    k: int
    files: list[str] | None
    dims: int = 0
    vector: Sequence[float] | None = None
    terms: list[str] | None = None
