"""What vector stores need from the rest of the server, as protocols: an
embedding model (``responsa.embeddings``) and the uploaded files
(``responsa.files``), so this package is written and tested against their
contracts only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Embedder(Protocol):
    """The part of ``responsa.embeddings.Embedder`` vector stores use."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int | None: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


EmbedderFor = Callable[[str], Embedder]
"""A model name (``local/all-minilm-l6-v2``, ``openai/text-embedding-3-small``) -> its embedder;
raises a ``ResponsaError`` (404/400) for a name that cannot embed."""


class Files(Protocol):
    """The part of ``responsa.files.FileStore`` vector stores use."""

    async def get(self, tenant: str, file_id: str) -> dict[str, Any] | None:
        """OpenAI's FileObject, ``None`` if the tenant has no such file."""
        ...

    async def text(self, tenant: str, file_id: str) -> str:
        """The file's extracted text; a ``ResponsaError`` if missing (404) or unreadable (400 ``unsupported_file``)."""
        ...
