"""Where an uploaded file's content lives: the small interface every blob
backend implements (one module each, registered in ``__init__``).

A backend receives an upload already spooled to a file on disk (never held
in memory), stores it together with the file's row (``Store.create_file``)
so a file is never listed without its content, and streams it back in
chunks of ``CHUNK_BYTES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 1024 * 1024
"""Read and database-row size: memory per stream is bounded by it."""


class Blobs(Protocol):
    name: str
    """Stored in the file's row (``storage``), so content written under one
    configuration is still found after the default backend changed."""

    spool_dir: Path
    """Where uploads are spooled before ``put`` (for ``disk``, the same
    filesystem as the content, so ``put`` is a rename)."""

    async def put(self, tenant: str, file: dict[str, Any], spooled: Path) -> None:
        """Keep ``spooled`` (consumed: moved or deleted) as ``file``'s
        content and record the row; on failure nothing of it remains."""
        ...

    def chunks(self, tenant: str, file_id: str) -> AsyncIterator[bytes]:
        """The content, ``CHUNK_BYTES`` at a time (the row was checked by the caller)."""
        ...

    async def delete(self, file_id: str) -> None:
        """Remove the content of a file whose row is already gone (idempotent)."""
        ...
