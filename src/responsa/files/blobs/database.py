"""Content inside the database (``file_chunks``, one ``CHUNK_BYTES`` row
each): the default on PostgreSQL, so replicas share files with nothing but
the database they already share. Row and chunks are one transaction; a
stream reads one chunk per round trip, so memory stays at one chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from responsa.files.blobs.base import CHUNK_BYTES
from responsa.store.base import Store


@dataclass(frozen=True, slots=True)
class _Chunks:
    """The spooled file in ``CHUNK_BYTES`` pieces, read afresh by every
    iteration: a driver may run a write again (SQLite re-runs a group
    commit's writes one by one when another write of the group failed)."""

    path: Path

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk


class DatabaseBlobs:
    name = "database"

    def __init__(self, store: Store, spool_dir: Path) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    async def put(self, tenant: str, file: dict[str, Any], spooled: Path) -> None:
        try:
            await self.store.create_file(tenant, file, self.name, _Chunks(spooled))
        finally:
            spooled.unlink(missing_ok=True)

    async def chunks(self, tenant: str, file_id: str) -> AsyncIterator[bytes]:
        n = 0
        while (chunk := await self.store.file_chunk(tenant, file_id, n)) is not None:
            yield chunk
            n += 1

    async def delete(self, file_id: str) -> None:
        return None  # the chunks went with the row (Store.delete_file)
