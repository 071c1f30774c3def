"""Shared by the files tests."""

from __future__ import annotations

import os

from openai import OpenAI

LIMIT = 3 * 1024 * 1024
"""``max_file_bytes`` of the ``files_server`` fixture."""


def client_for(url: str, key: str | None = None) -> OpenAI:
    """A client of its own tenant (every key is one)."""
    return OpenAI(base_url=f"{url}/v1", api_key=key or f"k-{os.urandom(6).hex()}", max_retries=0)
