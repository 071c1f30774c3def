"""Storage backends behind one interface, chosen by database URL."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from responsa.store.base import Store


def open_store(url: str, *, alone: Callable[[], bool] | None = None) -> Store:
    """``sqlite:///path[?synchronous=full]`` (or a bare path) or ``postgresql://...``.
    ``alone`` tells SQLite when its caller is the only one at work (see
    ``SQLiteDriver``; PostgreSQL has no thread to skip)."""
    if url.startswith(("postgres://", "postgresql://")):
        from responsa.store.postgres import PostgresStore

        return PostgresStore(url)
    path, _, query = url.removeprefix("sqlite:///").removeprefix("sqlite://").partition("?")
    from responsa.store.sqlite import SQLiteStore

    synchronous = dict(urllib.parse.parse_qsl(query)).get("synchronous", "normal").lower()
    if synchronous not in ("normal", "full"):
        raise ValueError(f"sqlite synchronous must be 'normal' or 'full', not {synchronous!r}")
    return SQLiteStore(path or ":memory:", synchronous="full" if synchronous == "full" else "normal",
                       alone=alone)


__all__ = ["Store", "open_store"]
