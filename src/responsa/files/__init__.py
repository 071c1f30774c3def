"""Uploaded files (``/v1/files``): their rows in the store, their content in
a blob backend, their text for models and vector stores.

``open_files`` decides where content goes: ``files_dir`` if set (a directory
every replica mounts); otherwise next to a SQLite database
(``<db>-files/``), or inside the database itself for PostgreSQL and an
in-memory SQLite (``file_chunks``), so replicas need nothing more than the
database they already share.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from responsa.config import Settings
from responsa.files.blobs import Blobs, DatabaseBlobs, DiskBlobs
from responsa.files.store import PURPOSES, FileStore
from responsa.store.base import Store


def default_dir(database_url: str) -> Path | None:
    """``<db>-files`` beside a SQLite file; ``None`` for PostgreSQL or ``:memory:``."""
    if database_url.startswith(("postgres://", "postgresql://")):
        return None
    path = database_url.removeprefix("sqlite:///").removeprefix("sqlite://").partition("?")[0]
    if not path or path == ":memory:":
        return None
    return Path(path + "-files")


def open_files(settings: Settings, store: Store) -> FileStore:
    directory = Path(settings.files_dir) if settings.files_dir else default_dir(settings.database_url)
    spool = directory / "spool" if directory is not None else Path(tempfile.gettempdir()) / "responsa-uploads"
    backends: dict[str, Blobs] = {"database": DatabaseBlobs(store, spool)}
    if directory is not None:
        backends["disk"] = DiskBlobs(store, directory)
    return FileStore(store, backends, "disk" if directory is not None else "database",
                     max_bytes=settings.max_file_bytes)


__all__ = ["PURPOSES", "FileStore", "default_dir", "open_files"]
