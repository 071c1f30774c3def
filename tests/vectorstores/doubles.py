"""Deterministic stand-ins for the embedding model and the Files API, for
the vector-store contract tests (the end-to-end tests use the real ones):
the store's behaviour (filters, isolation, fusion, jobs) is under test, not
embedding quality, so vectors are hashed bags of words."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

from responsa.protocol.errors import APIError

DIMS = 64


class BagOfWords:
    """Words hashed into ``DIMS`` buckets, L2-normalised: texts sharing
    words are close, as a real embedding's paraphrases are."""

    model = "test/bag-of-words"
    dimensions = DIMS

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        out = []
        for text in texts:
            v = [0.0] * DIMS
            for word in re.findall(r"\w+", text.lower()):
                v[zlib.crc32(word.encode()) % DIMS] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


class MemoryFiles:
    """Files per tenant held in memory, as ``responsa.files.FileStore`` reads them."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, tenant: str, file_id: str, filename: str, text: str) -> str:
        self.files[(tenant, file_id)] = (filename, text)
        return file_id

    async def get(self, tenant: str, file_id: str) -> dict[str, Any] | None:
        found = self.files.get((tenant, file_id))
        if found is None:
            return None
        return {"id": file_id, "object": "file", "filename": found[0], "bytes": len(found[1].encode())}

    async def text(self, tenant: str, file_id: str) -> str:
        found = self.files.get((tenant, file_id))
        if found is None:
            raise APIError(f"No file found with id '{file_id}'.", status=404, code="file_not_found")
        if found[0].endswith(".bin"):
            raise APIError("Cannot read text from this file.", code="unsupported_file")
        return found[1]
