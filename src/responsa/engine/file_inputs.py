"""``input_file`` content parts, made readable by the model that runs the turn.

A part names its file one of three ways: ``file_id`` (an upload of this
tenant, ``/v1/files``), ``file_data`` (base64, usually a ``data:`` URL, with
``filename``) or ``file_url``. What the model gets depends on what its
provider reads itself (``Capabilities.native_files``):

- a media type the provider takes natively goes to it as ``file_data``
  (an OpenAI Responses upstream reads PDFs itself, Anthropic too); a
  ``file_id`` is replaced by its content, since the upstream has no such file;
- an upstream that takes any file (``"*"``) also gets ``file_data`` and
  ``file_url`` parts exactly as sent (it fetches the URL itself);
- everything else is replaced by the file's text (``files.extract``) in an
  ``input_text`` part, ``<file name="...">...</file>``: every model reads text.

``file_url`` is fetched here only for providers that do not fetch it
themselves, through the same SSRF guard as request-supplied MCP servers
(``tools/mcp/urlguard.py``: public addresses only, unless the operator
allow-listed the host in ``[mcp] allow_private``), bounded in size and time.

The stored input items keep the parts as the client sent them; only the
model's copy of the context is rewritten, on every turn (a file's text is
cached by ``FileStore``). A file that a *previous* turn named and that was
deleted since becomes a note saying so, rather than failing the chain.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2

from responsa.files import FileStore
from responsa.files.extract import extract_text, supported
from responsa.protocol.errors import APIError, ResponsaError, invalid
from responsa.protocol.items import PART_FIELDS
from responsa.protocol.types import Item
from responsa.tools.mcp.urlguard import RefusedAddress, guarded_transport

MAX_BYTES = 32 * 1024 * 1024
"""Largest file handed to a model (the spec's ``file_data`` limit, and OpenAI's per-file input limit)."""
FETCH_TIMEOUT_S = 30.0
OFFLOAD_BYTES = 256 * 1024
"""Extraction from more bytes than this runs in a worker thread."""


def _too_large(param: str) -> APIError:
    return invalid(f"The file in '{param}' is larger than {MAX_BYTES} bytes, the most a model takes as input: "
                   "put it in a vector store and use file_search instead.", param, "file_too_large")


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _decode(data: str, name: str, param: str) -> tuple[str, bytes]:
    """``(media type, bytes)`` of a ``data:`` URL, or of bare base64 (typed by ``name``)."""
    mime, payload = _media_type(name), data
    if data.startswith("data:"):
        header, sep, payload = data[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            raise invalid(f"Invalid '{param}': expected a base64 data URL (data:<type>;base64,<data>).", param)
        mime = header.removesuffix(";base64").split(";")[0] or mime
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid '{param}': the file data is not valid base64.", param) from None
    return mime, raw


def _as_text(name: str, text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": f'<file name="{name}">\n{text}\n</file>'}


async def _extract(data: bytes, name: str, mime: str | None, param: str) -> str:
    try:
        if len(data) > OFFLOAD_BYTES:
            return await asyncio.to_thread(extract_text, data, name, mime)
        return extract_text(data, name, mime)
    except ResponsaError as exc:
        exc.param = param
        raise


class FileInputs:
    """Resolves the ``input_file`` parts of one turn's context."""

    def __init__(self, files: FileStore, tenant: str, native: frozenset[str], allow_private: list[str]) -> None:
        self.files = files
        self.tenant = tenant
        self.native = native
        self.allow_private = allow_private

    def _native(self, mime: str, data: bytes | None = None) -> bool:
        """Whether the provider reads this file itself. One that reads any
        file still gets text for what we can extract, except PDFs (read as
        pages, with their images)."""
        if mime in self.native:
            return True
        return "*" in self.native and (mime == "application/pdf" or not supported("", mime, data))

    async def resolve(self, part: dict[str, Any], param: str) -> dict[str, Any]:
        if part["type"] == "input_image":
            return await self._image(part, f"{param}.file_id")
        name = part.get("filename") or ""
        if file_id := part.get("file_id"):
            return await self._file_id(file_id, name, f"{param}.file_id")
        if data := part.get("file_data"):
            if "*" in self.native:
                return part
            mime, raw = _decode(data, name or "file", f"{param}.file_data")
            if len(raw) > MAX_BYTES:
                raise _too_large(f"{param}.file_data")
            if self._native(mime, raw):
                return part
            return _as_text(name or "file", await _extract(raw, name or "file", mime, f"{param}.file_data"))
        url = part.get("file_url")
        if "*" in self.native:
            return part
        mime, raw = await self._fetch(url or "", f"{param}.file_url")
        name = name or posixpath.basename(unquote(urlsplit(url or "").path)) or "file"
        if self._native(mime, raw):
            return {"type": "input_file", "filename": name, "file_data": _data_url(mime, raw)}
        return _as_text(name, await _extract(raw, name, mime, f"{param}.file_url"))

    async def _file_id(self, file_id: str, name: str, param: str) -> dict[str, Any]:
        file = await self.files.require(self.tenant, file_id, param)
        name = name or file["filename"]
        if file["bytes"] > MAX_BYTES:
            raise _too_large(param)
        mime = _media_type(file["filename"])
        if self._native(mime):
            data = await self.files.read(self.tenant, file_id, param)
            return {"type": "input_file", "filename": name, "file_data": _data_url(mime, data)}
        try:
            return _as_text(name, await self.files.text(self.tenant, file_id, param))
        except ResponsaError as exc:
            exc.param = param
            raise

    async def _image(self, part: dict[str, Any], param: str) -> dict[str, Any]:
        """An uploaded image (``input_image`` with ``file_id``) as the data URL every provider takes."""
        file = await self.files.require(self.tenant, part["file_id"], param)
        mime = _media_type(file["filename"])
        if not mime.startswith("image/"):
            raise invalid(f"File '{part['file_id']}' ({file['filename']}) is not an image: send it as an "
                          "'input_file' part instead.", param)
        if file["bytes"] > MAX_BYTES:
            raise _too_large(param)
        data = await self.files.read(self.tenant, part["file_id"], param)
        return {"type": "input_image", "image_url": _data_url(mime, data), "detail": part.get("detail", "auto")}

    async def _fetch(self, url: str, param: str) -> tuple[str, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"Invalid '{param}': expected an http:// or https:// URL.", param)
        try:
            async with httpx2.AsyncClient(transport=guarded_transport(self.allow_private), timeout=FETCH_TIMEOUT_S,
                                          follow_redirects=True, max_redirects=5) as client, \
                    client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise invalid(f"Fetching '{param}' failed: HTTP {response.status_code}.", param,
                                  "file_url_unavailable")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise _too_large(param)
                mime = response.headers.get("content-type", "").split(";")[0].strip()
        except httpx2.HTTPError as exc:
            if isinstance(exc.__cause__, RefusedAddress) or isinstance(exc.__context__, RefusedAddress):
                raise invalid(f"The URL in '{param}' resolves to a non-public address; such hosts must be "
                              "allow-listed by the operator ([mcp] allow_private).", param,
                              "file_url_refused") from None
            raise invalid(f"Fetching '{param}' failed: {type(exc).__name__}.", param, "file_url_unavailable") from None
        if not mime or mime == "application/octet-stream":
            mime = _media_type(parts.path)
        return mime, bytes(data)


PART_TYPES = frozenset({"input_file", "input_image"})
"""The content part types that can name a file (``inline`` has nothing to do without one)."""


def _names_file(part: Any) -> bool:
    return isinstance(part, dict) and (part.get("type") == "input_file" or (
        part.get("type") == "input_image" and bool(part.get("file_id")) and not part.get("image_url")))


def _file_parts(items: list[Item]) -> list[tuple[int, str, int]]:
    """``(item, field, part)`` of the parts that name a file. A plain loop
    that tests a part's type before calling ``_names_file``: this runs over
    every part of the history each turn (a comprehension calling it per part
    cost ~0.5 ms at 2,000 items, issue 16)."""
    found = []
    for i, it in enumerate(items):
        field = PART_FIELDS.get(it.get("type", ""))
        if field is None:
            continue
        parts = it.get(field)
        if isinstance(parts, list):
            for j, p in enumerate(parts):
                if isinstance(p, dict) and p.get("type") in PART_TYPES and _names_file(p):
                    found.append((i, field, j))
    return found


async def inline(context: list[Item], new_items: list[Item], *, files: FileStore, tenant: str,
                 native: frozenset[str], allow_private: list[str]) -> list[Item]:
    """``context`` with every ``input_file`` part the model cannot read
    itself replaced (see the module doc); the items themselves are not
    changed (they are the stored input). Errors name the part in ``input``
    for this turn's items; an earlier turn's file that is gone becomes a note."""
    found = _file_parts(context)
    if not found:
        return context
    positions = {it.get("id"): k for k, it in enumerate(new_items)}
    resolver = FileInputs(files, tenant, native, allow_private)
    out = list(context)
    for i, field, j in found:
        item = context[i]
        k = positions.get(item.get("id"))
        part = item[field][j]
        try:
            replacement = await resolver.resolve(part, f"input[{k}].{field}[{j}]")
        except ResponsaError as exc:
            if k is not None:
                raise
            what = part.get("file_id") or part.get("filename") or part.get("file_url") or "file"
            replacement = {"type": "input_text", "text": f"[file {what} is not available: {exc.message}]"}
        if out[i] is item:
            out[i] = {**item, field: list(item[field])}
        out[i][field][j] = replacement
    return out
