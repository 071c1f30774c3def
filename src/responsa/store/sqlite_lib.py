"""The one SQLite library every connection of the process uses.

Vector stores need the ``sqlite-vec`` extension loaded into the store's
connections, and Python builds often ship ``sqlite3`` without
``enable_load_extension`` (pyenv's and macOS's do). ``sqlean.py`` is the
standard ``sqlite3`` module built against a recent SQLite with extension
loading (and FTS5) on every platform, as wheels; it is a drop-in
replacement, so mypy checks it against the standard module's types.

Everything that opens the database file (the store, its checkpointer, the
keys/usage database) goes through ``connect`` here: two SQLite libraries on
one file in one process would each keep their own POSIX locks, and closing a
file with one releases the other's locks (SQLite's "how to corrupt" list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlite_vec

if TYPE_CHECKING:
    import sqlite3 as sqlite
else:
    import sqlean as sqlite

Connection = sqlite.Connection
Error = sqlite.Error
IntegrityError = sqlite.IntegrityError
OperationalError = sqlite.OperationalError


def connect(path: str, **options: Any) -> Connection:
    """A connection with ``sqlite-vec`` loaded (its ``vec0`` tables and
    ``vec_*`` functions); extension loading is switched off again at once, so
    no SQL can load anything else."""
    db: Connection = sqlite.connect(path, **options)
    db.enable_load_extension(True)
    try:
        sqlite_vec.load(db)
    finally:
        db.enable_load_extension(False)
    return db


__all__ = ["Connection", "Error", "IntegrityError", "OperationalError", "connect", "sqlite"]
