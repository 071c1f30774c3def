"""Content as plain files in a directory: the default next to a SQLite
database (``<db>-files/``), or a directory every replica mounts
(``files_dir``). Writes go to a spool file in the same directory and are
renamed into place, so a file's content appears whole or not at all; the
row is written after the rename, and the content removed if that fails."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from responsa.files.blobs.base import CHUNK_BYTES
from responsa.protocol.errors import ServerError
from responsa.store.base import Store


class DiskBlobs:
    name = "disk"

    def __init__(self, store: Store, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self.spool_dir = directory / "spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        """Two levels of fan-out keep directories small at millions of files."""
        return self.directory / file_id[-2:] / file_id

    async def put(self, tenant: str, file: dict[str, Any], spooled: Path) -> None:
        target = self.path(file["id"])

        def move() -> None:
            target.parent.mkdir(exist_ok=True)
            os.replace(spooled, target)

        await asyncio.to_thread(move)
        try:
            await self.store.create_file(tenant, file, self.name)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    async def chunks(self, tenant: str, file_id: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, self.path(file_id), "rb")
        except FileNotFoundError:
            raise ServerError(f"The content of file '{file_id}' is missing from {self.directory}.",
                              code="file_content_missing") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self.path(file_id).unlink, missing_ok=True)
