"""SQLite driver: one file, WAL, one connection owned by one dedicated thread.

Every store method is ONE call queued to that thread, where its whole
operation (``operations.py``; a read, or a write run inside a ``BEGIN
IMMEDIATE`` ... ``COMMIT`` transaction) runs as plain ``sqlite3`` calls: the
operation's coroutine is stepped there, and this driver's ``Conn`` never
suspends. One thread serialises writes (SQLite allows a single writer
anyway) and keeps the event loop free; writes queued together share one
transaction and one commit (group commit, ``SQLiteDriver``). A small
call of a caller that is alone (one turn running) skips the hop and runs on
the caller's thread, with the same transaction and commit.

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
import contextlib
import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from responsa.store import sqlite_lib
from responsa.store.driver import Dialect, DuplicateKey, Op, Row, UnstorableText
from responsa.store.operations import SQLStore
from responsa.supervise import Supervisor

T = TypeVar("T")
Db = sqlite_lib.Connection
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


def _locked(exc: sqlite_lib.OperationalError) -> bool:
    """SQLite could not get a lock at once (busy timeout 0)."""
    message = str(exc)
    return "locked" in message or "busy" in message


def _complete(coro: Coroutine[Any, Any, T]) -> T:
    """Run an operation to its end right here, on the store's thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a store operation awaited something other than its connection")


class _Job:
    """One store call waiting for the store's thread, and where its result goes."""

    __slots__ = ("fn", "future", "loop", "op", "outcome")

    def __init__(self, loop: asyncio.AbstractEventLoop, *, op: Op[Any] | None = None,
                 fn: Callable[[], Any] | None = None) -> None:
        self.op = op
        """A write: run inside a transaction."""
        self.fn = fn
        """Anything else (a read, opening, closing): run as it is."""
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.outcome: tuple[bool, Any] = (False, None)
        """``(True, result)`` or ``(False, exception)``."""


_STOP = object()
BUSY_TIMEOUT_MS = 5000
BATCH_MAX = 256
"""Most calls taken as one batch (a bound on one group commit's latency)."""


def _deliver(jobs: list[_Job]) -> None:
    """On the event loop: hand every finished call its result (skipping
    callers that stopped waiting)."""
    for job in jobs:
        if not job.future.done():
            ok, value = job.outcome
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


def _attempt(fn: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, fn()
    except BaseException as exc:  # handed to its caller, whatever it is
        return False, exc


class SQLiteDriver:
    """The connection lives on one dedicated thread that takes calls off a
    queue. Whatever is queued when it wakes is one batch, run in queue
    order, where consecutive writes run in ONE transaction with one commit
    (group commit); the callers of a batch are woken with one hand-off to
    the event loop. Under concurrency many responses so share one commit (a few
    WAL pages and ``write()`` calls each instead of a whole commit); alone, a
    write is its own transaction as before. A caller returns only once the
    commit holding its write is done (durable as ``synchronous`` says).
    A write that fails inside a batch rolls the batch back, and the batch's
    writes are run again one transaction each, so one caller's error (a
    duplicate idempotency key) never touches another caller's write.

    At concurrency 1 there is nothing to group, and the hop (waking the
    thread, then the event loop) cost more than the write itself (issue 16):
    a ``small`` call whose caller is ``alone`` runs inline on the caller's
    thread when the store's thread is idle, under the same lock
    (``_using``), with the same transaction and commit (so the same
    durability). It never waits for SQLite's write lock there: if another
    connection holds it, the call is queued to the thread as before."""

    dialect = DIALECT

    def __init__(self, path: str, *, synchronous: Literal["normal", "full"] = "normal",
                 alone: Callable[[], bool] | None = None) -> None:
        self.path = path
        self.synchronous = synchronous
        self._db: Db | None = None
        self._conn: _Conn | None = None
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._using = threading.Lock()
        """Held by whoever runs statements on the connection: the store's
        thread for a batch, or a caller running its call inline."""
        self._alone = alone if synchronous == "normal" else None
        """Whether the caller is the only one at work (``inline``); never
        under ``synchronous=full``, whose fsync must not stall the event loop."""
        self.inlined = 0
        """Calls run inline on the caller's thread (``_claim``)."""
        self._waits = BUSY_TIMEOUT_MS
        """The connection's busy timeout now (ms)."""
        self.supervisor = Supervisor()
        self.truncations = 0
        """TRUNCATE checkpoints run because the WAL passed ``WAL_CAP_BYTES``."""
        self.checkpoints = 0
        """PASSIVE checkpoint passes of the background checkpointer."""
        self.commits = 0
        """Transactions committed (a group commit counts once)."""

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        if self._thread is None:
            raise RuntimeError("store is not open")
        self._queue.put(job)
        return job.future

    def _claim(self) -> bool:
        """Whether to run a ``small`` call inline, on the caller's thread:
        only when the caller is alone (one turn running: nothing to group a
        commit with, and nothing else for the event loop to do meanwhile)
        and the store's thread is idle. The thread hop (a queue wake-up
        there, a loop wake-up back) is then most of a small write's cost at
        concurrency 1 (issue 16: two scheduler wake-ups, ~100-200 us of CPU
        on the benchmark machine). On success the caller holds ``_using``
        and must release it."""
        if self._alone is None or not self._alone() or not self._queue.empty() \
                or not self._using.acquire(blocking=False):
            return False
        if self._db is None:  # closed meanwhile
            self._using.release()
            return False
        return True

    async def read(self, op: Op[T], *, small: bool = False) -> T:
        if small and self._claim():
            try:
                assert self._conn is not None
                result: T = _complete(op(self._conn))
                self.inlined += 1
                return result
            except sqlite_lib.OperationalError as exc:
                if not _locked(exc):
                    raise
            finally:
                self._using.release()
        queued: T = await self._submit(_Job(asyncio.get_running_loop(), fn=functools.partial(self._run, op, False)))
        return queued

    async def write(self, op: Op[T], *, small: bool = False) -> T:
        """Inline, the connection's busy timeout is 0 (``_serve`` sets it
        only around the thread's own batches): another connection holding
        the write lock (the usage database, another process on the file, a
        TRUNCATE checkpoint) must not stall the event loop. The call is
        then rolled back and goes to the store's thread, which waits."""
        if small and self._claim():
            try:
                assert self._db is not None
                self._db.execute("BEGIN IMMEDIATE")
                result: T = self._transaction(op)
                self.inlined += 1
                return result
            except sqlite_lib.OperationalError as exc:
                if self._db is not None and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if not _locked(exc):
                    raise
            finally:
                self._using.release()
        queued: T = await self._submit(_Job(asyncio.get_running_loop(), op=op))
        return queued

    async def write_statement(self, query: str, *params: Any) -> int:
        return await self.write(lambda db: db.execute(query, *params))

    async def call(self, fn: Callable[[Db], T]) -> T:
        """``fn(connection)`` on the store's thread (tests, diagnostics)."""
        result: T = await self._submit(_Job(asyncio.get_running_loop(), fn=functools.partial(self._call, fn)))
        return result

    def _call(self, fn: Callable[[Db], T]) -> T:
        if self._db is None:
            raise RuntimeError("store is not open")
        return fn(self._db)

    def _run(self, op: Op[T], transaction: bool) -> T:
        """``op`` alone: as it is (a read) or as its own transaction."""
        db, conn = self._db, self._conn
        if db is None or conn is None:
            raise RuntimeError("store is not open")
        if not transaction:
            return _complete(op(conn))
        db.execute("BEGIN IMMEDIATE")
        return self._transaction(op)

    def _transaction(self, op: Op[T]) -> T:
        """``op`` inside the transaction just begun, committed (or rolled back)."""
        db, conn = self._db, self._conn
        assert db is not None and conn is not None
        try:
            result = _complete(op(conn))
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite_lib.IntegrityError) and str(exc).startswith("UNIQUE constraint failed"):
                raise DuplicateKey(str(exc)) from exc
            raise
        db.execute("COMMIT")
        self.commits += 1
        return result

    # -- on the store's thread -------------------------------------------------

    def _serve(self) -> None:
        """Take batches off the queue until told to stop."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            jobs = [job for job in batch if isinstance(job, _Job)]
            with self._using:
                self._busy_timeout(BUSY_TIMEOUT_MS)
                try:
                    self._batch(jobs)
                finally:
                    if self._alone is not None:  # inline calls must never wait (``write``)
                        self._busy_timeout(0)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
            for job in jobs:
                by_loop.setdefault(job.loop, []).append(job)
            for loop, done in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                    loop.call_soon_threadsafe(_deliver, done)
            if _STOP in batch:
                return

    def _busy_timeout(self, ms: int) -> None:
        if self._db is not None and self._waits != ms:
            self._db.execute(f"PRAGMA busy_timeout={ms}")
            self._waits = ms

    def _batch(self, jobs: list[_Job]) -> None:
        """In queue order; each run of consecutive writes is one group."""
        writes: list[tuple[_Job, Op[Any]]] = []
        for job in jobs:
            if job.op is not None:
                writes.append((job, job.op))
                continue
            self._commit(writes)
            writes = []
            if job.fn is not None:
                job.outcome = _attempt(job.fn)
        self._commit(writes)

    def _commit(self, writes: list[tuple[_Job, Op[Any]]]) -> None:
        if len(writes) > 1 and self._group(writes):
            return
        for job, op in writes:  # alone, or again one by one after a write failed in the group
            job.outcome = _attempt(functools.partial(self._run, op, True))

    def _group(self, writes: list[tuple[_Job, Op[Any]]]) -> bool:
        """Every write in one transaction; ``False`` (all rolled back, no
        outcome set) if any of them failed."""
        db, conn = self._db, self._conn
        if db is None or conn is None:
            return False
        results = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for _job, op in writes:
                results.append(_complete(op(conn)))
            db.execute("COMMIT")
        except Exception:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return False
        self.commits += 1
        for (job, _op), result in zip(writes, results, strict=True):
            job.outcome = (True, result)
        return True

    def _open(self) -> None:
        db = sqlite_lib.connect(self.path, isolation_level=None, check_same_thread=False,
                                timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: other processes may be opening the file too
        _enable_wal(db)
        db.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'full' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
            db.execute(f"PRAGMA journal_size_limit={WAL_CAP_BYTES}")
        self._db, self._conn = db, _Conn(db)

    def _shut(self) -> None:
        if self._db is not None:
            if self.path != ":memory:":
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = self._conn = None

    # -- life cycle --------------------------------------------------------------

    async def open(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="responsa-sqlite", daemon=True)
        self._thread.start()
        try:
            await self._submit(_Job(asyncio.get_running_loop(), fn=self._open))
        except BaseException:
            await self._stop_thread()
            raise
        if self.path != ":memory:":
            self.supervisor.spawn("sqlite-checkpoints", lambda: _checkpoint_loop(self))

    async def close(self) -> None:
        await self.supervisor.stop()
        if self._thread is None:
            return
        try:
            await self._submit(_Job(asyncio.get_running_loop(), fn=self._shut))
        finally:
            await self._stop_thread()

    async def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, thread.join)


class SQLiteStore(SQLStore):
    """The store on one SQLite file (``sqlite:///path[?synchronous=full]``)."""

    driver: SQLiteDriver

    def __init__(self, path: str, *, synchronous: Literal["normal", "full"] = "normal",
                 alone: Callable[[], bool] | None = None) -> None:
        super().__init__(SQLiteDriver(path, synchronous=synchronous, alone=alone))
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
        except sqlite_lib.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    db.execute("PRAGMA journal_mode=WAL")


def _checkpoint_connect(path: str) -> Db:
    db = sqlite_lib.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=TRUNCATE_WAIT_MS / 1000)
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
