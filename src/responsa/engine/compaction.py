"""Compaction items: an opaque, tamper-evident encoding of context items.

``POST /v1/responses/compact`` returns the conversation's user messages
verbatim followed by one ``compaction`` item whose ``encrypted_content``
encodes the whole compacted context (in order). A later request that sends
those items back gets exactly the compacted context again: the compaction
item expands in place and the verbatim copies of messages it already
contains are dropped, so nothing is duplicated or reordered.

The encoding is ``v1.<base64url(zlib(JSON))>.<base64url(HMAC-SHA256)>``;
the MAC covers the tenant too, so an item only works for the API key that
created it. It is signed, not encrypted: the holder already has the
content it encodes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib

import orjson

from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.protocol.types import Item

_VERSION = "v1"


def key_from(secret: str) -> bytes:
    """The MAC key, derived from ``secret_key`` when configured, else from the
    secret the database keeps (``Store.server_secret``), so items survive
    restarts and verify on every replica either way."""
    return hashlib.sha256(b"responsa-compaction\0" + secret.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, tenant: str, payload: str) -> bytes:
    return hmac.new(key, f"{_VERSION}\0{tenant}\0{payload}".encode(), hashlib.sha256).digest()


def encode(items: list[Item], *, key: bytes, tenant: str) -> Item:
    """A compaction item standing for ``items``."""
    payload = _b64(zlib.compress(orjson.dumps(items)))
    mac = _b64(_mac(key, tenant, payload))
    return {"type": "compaction", "id": new_id("cmp"), "encrypted_content": f"{_VERSION}.{payload}.{mac}"}


def _decode(content: str, *, key: bytes, tenant: str, param: str) -> list[Item]:
    bad = invalid(f"Invalid '{param}': the compaction item was not created by this server for this API key, "
                  "or it was modified.", param, "invalid_encrypted_content")
    version, _, rest = content.partition(".")
    payload, _, mac = rest.partition(".")
    if version != _VERSION or not payload or not mac:
        raise bad
    try:
        ok = hmac.compare_digest(_unb64(mac), _mac(key, tenant, payload))
        items = orjson.loads(zlib.decompress(_unb64(payload))) if ok else None
    except (binascii.Error, ValueError, zlib.error):
        raise bad from None
    if not isinstance(items, list):
        raise bad
    return items


def expand(items: list[Item], *, key: bytes, tenant: str, param: str = "input") -> list[Item]:
    """``items`` with every compaction item replaced by the items it encodes."""
    if not any(it.get("type") == "compaction" for it in items):
        return items
    decoded: dict[int, list[Item]] = {}
    covered: set[str] = set()
    for i, it in enumerate(items):
        if it.get("type") == "compaction":
            inner = _decode(it["encrypted_content"], key=key, tenant=tenant, param=f"{param}[{i}].encrypted_content")
            decoded[i] = inner
            covered.update(x["id"] for x in inner if isinstance(x.get("id"), str))
    out: list[Item] = []
    for i, it in enumerate(items):
        if i in decoded:
            out.extend(decoded[i])
        elif it.get("id") not in covered:
            out.append(it)
    return out
