"""``FileStore`` over its two blob backends: content in a directory or in
the database, each file read back from the backend that wrote it after the
configuration changed, expiry, and uploads that never leave a trace."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responsa.config import load_settings
from responsa.files import FileStore, open_files
from responsa.files.blobs import CHUNK_BYTES
from responsa.protocol.errors import ResponsaError
from responsa.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _files(store: Store, tmp_path: Path, **settings: object) -> FileStore:
    return open_files(load_settings(None, **{"database_url": f"sqlite:///{tmp_path / 'f.db'}", **settings}), store)


async def _add(files: FileStore, data: bytes, expires_after: int | None = None) -> str:
    spool = files.spool()
    for i in range(0, len(data), 70_000):  # as an upload arrives: in pieces
        await spool.write(data[i:i + 70_000])
    return str((await files.add("t", spool, filename="d.bin", purpose="batch", expires_after=expires_after))["id"])


async def test_each_backend_keeps_the_bytes(store: Store, tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 7)
    on_disk = _files(store, tmp_path)  # SQLite file: beside the database
    assert on_disk.writer.name == "disk"
    disk_id = await _add(on_disk, data)
    assert (tmp_path / "f.db-files" / disk_id[-2:] / disk_id).read_bytes() == data
    in_db = _files(store, tmp_path, database_url="sqlite://:memory:")  # no directory: inside the database
    assert in_db.writer.name == "database"
    db_id = await _add(in_db, data)
    assert [len(c) for c in [c async for c in in_db.chunks("t", db_id)]] == [CHUNK_BYTES, CHUNK_BYTES, 7]
    # Moving to a directory keeps what the database holds readable; a server
    # without the directory says why it cannot read a file kept there.
    assert await on_disk.read("t", disk_id) == data and await on_disk.read("t", db_id) == data
    with pytest.raises(ResponsaError) as unavailable:
        await in_db.read("t", disk_id)
    assert unavailable.value.status == 500 and unavailable.value.code == "file_storage_unavailable"
    shared = _files(store, tmp_path, files_dir=str(tmp_path / "shared"))
    shared_id = await _add(shared, b"on the shared mount")
    assert (tmp_path / "shared" / shared_id[-2:] / shared_id).read_bytes() == b"on the shared mount"
    assert await on_disk.delete("t", disk_id) and await on_disk.delete("t", db_id)
    assert not (tmp_path / "f.db-files" / disk_id[-2:] / disk_id).exists()
    assert await store.file_chunk("t", db_id, 0) is None
    with pytest.raises(ResponsaError) as caught:
        await on_disk.read("t", db_id)
    assert caught.value.status == 404


async def test_expired_files_are_gone_and_swept(store: Store, tmp_path: Path) -> None:
    files = _files(store, tmp_path)
    old = await _add(files, b"old", expires_after=0)  # expires the moment it is created
    assert await files.get("t", old) is None
    assert (await files.list("t", after=None, limit=10, order="desc", purpose=None)).data == []
    await _add(files, b"new")  # an upload reclaims expired files on its way
    assert await store.expired_files(2**40, 10) == []
    assert not (tmp_path / "f.db-files" / old[-2:] / old).exists()


async def test_an_upload_over_the_limit_leaves_nothing(store: Store, tmp_path: Path) -> None:
    files = _files(store, tmp_path, max_file_bytes=100_000)
    spool = files.spool()
    await spool.write(b"x" * 100_000)
    with pytest.raises(ResponsaError) as caught:
        await spool.write(b"x")
    assert caught.value.status == 413
    spool.discard()
    assert list((tmp_path / "f.db-files" / "spool").iterdir()) == []
