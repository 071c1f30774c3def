"""SQLite driver: one file, WAL, one connection owned by one thread.

Every store method is ONE hop to that thread, where its whole operation
(``operations.py``; a read, or a ``BEGIN IMMEDIATE`` ... ``COMMIT``
transaction) runs as plain ``sqlite3`` calls: the operation's coroutine is
stepped there, and this driver's ``Conn`` never suspends. One thread
serialises writes (SQLite allows a single writer anyway), keeps the event
loop free, and costs one thread switch per method instead of one per statement.

Durability: ``synchronous=NORMAL`` (the default) makes every commit survive
a crash or ``kill -9`` of the server process; an OS crash or power loss may
roll back the last commits. ``sqlite:///file.db?synchronous=full`` fsyncs
every commit (about 3 ms each on a typical cloud disk) to survive that too;
PostgreSQL is the choice when it matters at scale.

Checkpoints (copying the WAL back into the database file, with an fsync)
run on a second connection and thread every ``CHECKPOINT_S`` instead of
inside whichever commit crosses SQLite's threshold: left automatic, they put
a 15-20 ms stall into one request in every few hundred.

The WAL is bounded: PASSIVE checkpoints never block anyone, but under
constant reads and writes they never get to restart the WAL either (issue
15 measured a 2 GB WAL for a 162 MB database after 3 minutes). When the WAL
file is past ``WAL_CAP_BYTES`` at a tick, the checkpointer runs TRUNCATE
instead of PASSIVE: it waits at most ``TRUNCATE_WAIT_MS`` for the writer
and other replicas' readers, copies what is left (writers wait meanwhile:
a pause of milliseconds to tens of milliseconds, rare since PASSIVE keeps
up under normal load) and leaves an empty WAL; if readers were in the way
it tries again at the next tick. The WAL is so bounded by the cap plus
one tick of writes. ``journal_size_limit``
caps what a restarted WAL keeps on disk. The checkpointer runs under a
``Supervisor``: if it fails (out of file descriptors...) it is restarted,
and ``/health`` says so.
"""


from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from responsa.store.driver import Dialect, DuplicateKey, Op, Row, UnstorableText
from responsa.store.operations import SQLStore
from responsa.supervise import Supervisor

T = TypeVar("T")
Db = sqlite3.Connection
DIALECT = Dialect("sqlite", skip_locked=False, migration_lock=None)  # BEGIN IMMEDIATE is the lock


def _storable(params: Sequence[Any]) -> Sequence[Any]:
    """``params``, unless one is text PostgreSQL could not hold (a memchr per
    string: JSON payloads never carry a raw NUL, orjson escapes it)."""
    for value in params:
        if type(value) is str and "\x00" in value:
            raise UnstorableText
    return params


class _Conn:
    """``Conn`` over the thread's ``sqlite3`` connection: its coroutines
    complete without ever suspending."""

    dialect = DIALECT

    def __init__(self, db: Db) -> None:
        self._db = db

    async def execute(self, query: str, *params: Any) -> int:
        return self._db.execute(query, _storable(params)).rowcount

    async def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(query, [_storable(row) for row in rows])

    async def fetch(self, query: str, *params: Any) -> list[Row]:
        return self._db.execute(query, _storable(params)).fetchall()

    async def fetchrow(self, query: str, *params: Any) -> Row | None:
        row: Row | None = self._db.execute(query, _storable(params)).fetchone()
        return row

    async def fetchval(self, query: str, *params: Any) -> Any:
        row = self._db.execute(query, _storable(params)).fetchone()
        return None if row is None else row[0]


def _complete(coro: Coroutine[Any, Any, T]) -> T:
    """Run an operation to its end right here, on the store's thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a store operation awaited something other than its connection")


class SQLiteDriver:
    dialect = DIALECT

    def __init__(self, path: str, *, synchronous: Literal["normal", "full"] = "normal") -> None:
        self.path = path
        self.synchronous = synchronous
        self._db: Db | None = None
        self._conn: _Conn | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-sqlite")
        self.supervisor = Supervisor()
        self.truncations = 0
        """TRUNCATE checkpoints run because the WAL passed ``WAL_CAP_BYTES``."""
        self.checkpoints = 0
        """PASSIVE checkpoint passes of the background checkpointer."""
        """TRUNCATE checkpoints run because the WAL passed ``WAL_CAP_BYTES``."""

    async def read(self, op: Op[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, op, False)

    async def write(self, op: Op[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, op, True)

    async def call(self, fn: Callable[[Db], T]) -> T:
        """``fn(connection)`` on the store's thread (tests, diagnostics)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, fn)

    def _call(self, fn: Callable[[Db], T]) -> T:
        if self._db is None:
            raise RuntimeError("store is not open")
        return fn(self._db)

    def _run(self, op: Op[T], transaction: bool) -> T:
        db, conn = self._db, self._conn
        if db is None or conn is None:
            raise RuntimeError("store is not open")
        if not transaction:
            return _complete(op(conn))
        db.execute("BEGIN IMMEDIATE")
        try:
            result = _complete(op(conn))
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError) and str(exc).startswith("UNIQUE constraint failed"):
                raise DuplicateKey(str(exc)) from exc
            raise
        db.execute("COMMIT")
        return result

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        db.execute("PRAGMA busy_timeout=5000")  # first: other processes may be opening the file too
        _enable_wal(db)
        db.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'full' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
            db.execute(f"PRAGMA journal_size_limit={WAL_CAP_BYTES}")
        self._db, self._conn = db, _Conn(db)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._open)
        if self.path != ":memory:":
            self.supervisor.spawn("sqlite-checkpoints", lambda: _checkpoint_loop(self))

    async def close(self) -> None:
        await self.supervisor.stop()

        def shut() -> None:
            if self._db is not None:
                if self.path != ":memory:":
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)


class SQLiteStore(SQLStore):
    """The store on one SQLite file (``sqlite:///path[?synchronous=full]``)."""

    driver: SQLiteDriver

    def __init__(self, path: str, *, synchronous: Literal["normal", "full"] = "normal") -> None:
        super().__init__(SQLiteDriver(path, synchronous=synchronous))
        self.path = path
        self.synchronous = synchronous


# -- WAL and checkpoints -------------------------------------------------------
# Everything about the write-ahead log is here: the switch to WAL mode
# (``_enable_wal``, from ``SQLiteDriver._open``, which also turns automatic
# checkpoints off), the background checkpointer (``_checkpoint_loop``) and
# the final TRUNCATE checkpoint in ``SQLiteDriver.close``.

CHECKPOINT_S = 1.0
WAL_CAP_BYTES = 64 * 1024 * 1024
TRUNCATE_WAIT_MS = 100


def _enable_wal(db: Db) -> None:
    """Switching a new file to WAL needs an exclusive lock, for which SQLite
    does not call the busy handler: replicas opening a fresh file together
    must retry themselves."""
    for _ in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    db.execute("PRAGMA journal_mode=WAL")


def _checkpoint_connect(path: str) -> Db:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=TRUNCATE_WAIT_MS / 1000)
    db.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")  # PASSIVE never waits; TRUNCATE briefly
    return db


def wal_size(path: str) -> int:
    try:
        return os.stat(path + "-wal").st_size
    except OSError:
        return 0


def _truncate(db: Db) -> bool:
    """One TRUNCATE attempt that waits at most ``TRUNCATE_WAIT_MS`` for the
    writer and for readers (other replicas on the same file): writers wait
    while it runs, so it must not wait long; ``False`` if they were in the
    way (the next tick tries again)."""
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return not busy


async def _checkpoint_loop(driver: SQLiteDriver) -> None:
    """PASSIVE checkpoints never block the writer, which keeps appending
    to the WAL meanwhile; SQLite reuses the WAL from the start once it is
    fully checkpointed and nobody reads it, which constant load prevents:
    past ``WAL_CAP_BYTES`` a TRUNCATE resets it instead."""
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="responsa-sqlite-checkpoint")
    try:
        db = await loop.run_in_executor(worker, _checkpoint_connect, driver.path)
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_S)
                if wal_size(driver.path) > WAL_CAP_BYTES:
                    if await loop.run_in_executor(worker, _truncate, db):
                        driver.truncations += 1
                    continue
                await loop.run_in_executor(worker, db.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                driver.checkpoints += 1
        finally:
            await asyncio.shield(loop.run_in_executor(worker, db.close))
    finally:
        worker.shutdown(wait=False)
