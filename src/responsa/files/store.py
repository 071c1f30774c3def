"""``FileStore``: uploaded files for the HTTP routes (``api/files.py``), the
engine (``input_file`` parts, ``files.inputs``) and vector stores. Rows live
in the ``Store`` (``store/files.py``), content in a blob backend
(``files.blobs``); every method takes the tenant first, and a file of
another tenant, or past its ``expires_at``, is simply not found.

Files never change once written, so their extracted text is cached (by id,
bounded by ``TEXT_CACHE_CHARS``): a file quoted on every turn of a
conversation is read and parsed once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from responsa.files.blobs import CHUNK_BYTES, Blobs
from responsa.files.extract import extract_text
from responsa.protocol.errors import APIError, ServerError, not_found
from responsa.store.base import Page, Store

log = logging.getLogger("responsa.files")

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
"""What ``POST /v1/files`` accepts as ``purpose`` (OpenAI's list)."""
TEXT_CACHE_CHARS = 32 * 1024 * 1024
SWEEP_BATCH = 16
"""Expired files whose content an upload removes on its way (bounded work per request)."""


def too_large(limit: int) -> APIError:
    return APIError(f"File too large: the limit is {limit} bytes (max_file_bytes).", status=413,
                    param="file", code="file_too_large")


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class Spool:
    """An upload on its way to disk: counted against the size limit as it
    arrives, written in ``CHUNK_BYTES`` pieces off the event loop, never
    held whole in memory. ``discard`` removes it unless a backend took it."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.limit = limit
        self.size = 0
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
        self.path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        self._buffer: list[bytes] = []
        self._buffered = 0

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= CHUNK_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        await asyncio.to_thread(self._handle.write, data)

    async def finish(self) -> Path:
        await self._flush()
        await asyncio.to_thread(self._handle.close)
        return self.path

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class FileStore:
    def __init__(self, store: Store, backends: dict[str, Blobs], writer: str, *, max_bytes: int) -> None:
        self.store = store
        self.backends = backends
        self.writer = backends[writer]
        """The backend new uploads go to; every backend stays readable."""
        self.max_bytes = max_bytes
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._text_chars = 0

    def spool(self) -> Spool:
        return Spool(self.writer.spool_dir, self.max_bytes)

    async def add(self, tenant: str, spool: Spool, *, filename: str, purpose: str,
                  expires_after: int | None = None) -> dict[str, Any]:
        """Store a finished upload as a new file; its ``FileObject``."""
        now = int(time.time())
        file = {"id": new_file_id(), "object": "file", "bytes": spool.size, "created_at": now,
                "expires_at": None if expires_after is None else now + expires_after, "filename": filename,
                "purpose": purpose, "status": "processed", "status_details": None}
        path = await spool.finish()
        await self.writer.put(tenant, file, path)
        await self._sweep(now)
        return file

    async def get(self, tenant: str, file_id: str) -> dict[str, Any] | None:
        found = await self.store.get_file(tenant, file_id, int(time.time()))
        return None if found is None else found[0]

    async def require(self, tenant: str, file_id: str, param: str = "file_id") -> dict[str, Any]:
        """The ``FileObject``, or the 404 OpenAI gives for a file that is not yours."""
        file = await self.get(tenant, file_id)
        if file is None:
            raise not_found(f"No such File object: {file_id}", param, "file_not_found")
        return file

    async def list(self, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                   purpose: str | None) -> Page:
        return await self.store.list_files(tenant, after=after, limit=limit, order=order, purpose=purpose,
                                           now=int(time.time()))

    async def chunks(self, tenant: str, file_id: str, param: str = "file_id") -> AsyncIterator[bytes]:
        """The content in ``CHUNK_BYTES`` pieces; the 404 before the first."""
        found = await self.store.get_file(tenant, file_id, int(time.time()))
        if found is None:
            raise not_found(f"No such File object: {file_id}", param, "file_not_found")
        async for chunk in self._backend(found[1], file_id).chunks(tenant, file_id):
            yield chunk

    async def read(self, tenant: str, file_id: str, param: str = "file_id") -> bytes:
        """The whole content (memory: the file's size, at most ``max_file_bytes``)."""
        data = bytearray()
        async for chunk in self.chunks(tenant, file_id, param):
            data += chunk
        return bytes(data)

    async def text(self, tenant: str, file_id: str, param: str = "file_id") -> str:
        """The file's text (``files.extract``); 404 if not found, 400
        ``unsupported_file`` if its type has no text this server can read."""
        file = await self.require(tenant, file_id, param)
        if (cached := self._texts.get(file_id)) is not None:
            self._texts.move_to_end(file_id)
            return cached
        data = await self.read(tenant, file_id, param)
        text = await asyncio.to_thread(extract_text, data, file["filename"])
        self._remember(file_id, text)
        return text

    async def delete(self, tenant: str, file_id: str) -> bool:
        storage = await self.store.delete_file(tenant, file_id)
        if storage is None:
            return False
        self._forget(file_id)
        await self._backend(storage, file_id).delete(file_id)
        return True

    def _backend(self, storage: str, file_id: str) -> Blobs:
        backend = self.backends.get(storage)
        if backend is None:
            raise ServerError(f"File '{file_id}' is kept in '{storage}' storage, which this server is not "
                              "configured with (see files_dir).", code="file_storage_unavailable")
        return backend

    async def _sweep(self, now: int) -> None:
        """Remove a few expired files (rows and content): expiry is enforced
        by every read already, this only reclaims their space."""
        try:
            for tenant, file_id, _ in await self.store.expired_files(now, SWEEP_BATCH):
                await self.delete(tenant, file_id)
        except Exception as exc:  # never fails the upload it rides on; the next upload retries
            log.warning("could not remove expired files: %r", exc)

    def _remember(self, file_id: str, text: str) -> None:
        if len(text) > TEXT_CACHE_CHARS // 4:
            return
        self._texts[file_id] = text
        self._text_chars += len(text)
        while self._text_chars > TEXT_CACHE_CHARS:
            _, old = self._texts.popitem(last=False)
            self._text_chars -= len(old)

    def _forget(self, file_id: str) -> None:
        if (old := self._texts.pop(file_id, None)) is not None:
            self._text_chars -= len(old)
