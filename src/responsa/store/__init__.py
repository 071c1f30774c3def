"""Storage backends behind one interface, chosen by database URL."""

from __future__ import annotations

from responsa.store.base import Store


def open_store(url: str) -> Store:
    """``sqlite:///path`` (or a bare path) or ``postgresql://...``."""
    if url.startswith(("postgres://", "postgresql://")):
        from responsa.store.postgres import PostgresStore

        return PostgresStore(url)
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    from responsa.store.sqlite import SQLiteStore

    return SQLiteStore(path or ":memory:")


__all__ = ["Store", "open_store"]
