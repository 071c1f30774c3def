"""SQLite-only behaviour: checkpoints happen off the request path, and the
durability mode is chosen by the database URL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from responsa.store import open_store
from responsa.store.sqlite import CHECKPOINT_S, SQLiteStore
from tests.store.test_store_contract import T1, create, message


async def test_wal_is_checkpointed_in_the_background_and_truncated_on_close(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    for i in range(200):
        await create(store, T1, inputs=[message(f"m{i}")])
    assert (tmp_path / "c.db-wal").stat().st_size > 0
    before = path.stat().st_size  # the writes are still only in the WAL: no commit checkpoints
    await asyncio.sleep(CHECKPOINT_S * 2.5)
    assert path.stat().st_size > before, "the background checkpointer copied the WAL into the file"
    await store.close()
    assert not (tmp_path / "c.db-wal").exists() or (tmp_path / "c.db-wal").stat().st_size == 0


@pytest.mark.parametrize(("query", "expected"), [("", "normal"), ("?synchronous=full", "full"),
                                                 ("?synchronous=NORMAL", "normal")])
def test_synchronous_from_url(tmp_path: Path, query: str, expected: str) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}{query}")
    assert isinstance(store, SQLiteStore) and store.synchronous == expected


def test_bad_synchronous_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?synchronous=off")
