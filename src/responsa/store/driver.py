"""What a store operation may ask of a database: the small interface the
SQLite and PostgreSQL drivers implement, so that every operation
(``store/operations.py``) is written once and run by either.

An operation is ``async def op(db: Conn) -> T``: statements written with
``?`` placeholders (a driver numbers them if its database wants ``$n``),
awaited one after the other on one connection. ``Driver.write`` runs it as
one transaction, ``Driver.read`` on one connection without one.

Operations may await their ``Conn`` and nothing else: the SQLite driver runs
a whole operation on its database thread by stepping the coroutine there (its
``Conn`` never suspends), which keeps SQLite at one thread hop per store
method; the PostgreSQL driver simply awaits it on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = Sequence[Any]


class DuplicateKey(Exception):
    """A write broke a unique constraint (the transaction was rolled back)."""


class UnstorableText(ValueError):
    """A statement's text parameter holds a NUL character, which PostgreSQL's
    ``text`` cannot hold: refused by both drivers alike (SQLite would store
    it, or look it up and find nothing), so no id works on one backend and
    fails on the other. The HTTP layer refuses such ids before the store."""

    def __init__(self) -> None:
        super().__init__("text with a NUL character cannot be stored or looked up")


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where the databases differ in what an operation may do (their SQL is
    otherwise the same, ``store/sql.py``)."""

    name: str
    # ``SELECT ... FOR UPDATE SKIP LOCKED``: a claimer skips a row another
    # transaction holds instead of queueing on it.
    skip_locked: bool
    # Run first in each migration's transaction, so replicas starting
    # together migrate one after the other (``None``: the write lock does it).
    migration_lock: str | None
    # Array parameters (``unnest``): a response and all its items written by
    # ONE statement, one round trip to a database server
    # (``sql.RECORD_RESPONSE_ARRAYS``); without them, one statement per table.
    arrays: bool = False


class Conn(Protocol):
    """One connection, inside one operation."""

    dialect: Dialect

    async def execute(self, query: str, *params: Any) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, query: str, *params: Any) -> list[Row]: ...

    async def fetchrow(self, query: str, *params: Any) -> Row | None: ...

    async def fetchval(self, query: str, *params: Any) -> Any:
        """The first column of the first row, ``None`` without a row."""
        ...


Op = Callable[[Conn], Coroutine[Any, Any, T]]


class Driver(Protocol):
    dialect: Dialect

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self, op: Op[T], *, small: bool = False) -> T:
        """``op`` on one connection, each statement seeing the latest commits.
        ``small``: a few rows on a request's path, which SQLite may run
        inline on the caller's thread (``SQLiteDriver``); never a bulk
        operation (file contents, vector chunks) that would stall the event loop."""
        ...

    async def write(self, op: Op[T], *, small: bool = False) -> T:
        """``op`` as one transaction, committed (durably, as the driver's
        docstring says) before this returns; rolled back if it raises.
        A unique-constraint violation surfaces as ``DuplicateKey``.
        ``small`` as for ``read``."""
        ...

    async def write_statement(self, query: str, *params: Any) -> int:
        """One statement, atomic on its own, committed like ``write`` before
        this returns, without a transaction around it (no ``BEGIN``/``COMMIT``
        round trips on PostgreSQL); the number of rows it changed."""
        ...
