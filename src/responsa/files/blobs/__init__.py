"""Blob backends for uploaded files' content, by name (the ``storage``
column of a file's row). A new backend is one module and one line here."""

from __future__ import annotations

from responsa.files.blobs.base import CHUNK_BYTES, Blobs
from responsa.files.blobs.database import DatabaseBlobs
from responsa.files.blobs.disk import DiskBlobs

__all__ = ["CHUNK_BYTES", "Blobs", "DatabaseBlobs", "DiskBlobs"]
