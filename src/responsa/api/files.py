"""``/v1/files``: upload (multipart ``file`` + ``purpose``, optional
``expires_after``), list, retrieve, download and delete, in OpenAI's shapes
(``FileObject``, ``FileDeleted``), each tenant seeing only its own files.
Storage is ``responsa.files``; uploads stream to disk (``api/uploads.py``).
"""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responsa.api.lists import list_body, list_params
from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.api.uploads import Upload, receive
from responsa.files import PURPOSES
from responsa.protocol.errors import invalid, not_found
from responsa.protocol.request import whole_number

EXPIRES_MIN_S, EXPIRES_MAX_S = 3600, 30 * 24 * 3600
"""``expires_after.seconds`` bounds: one hour to 30 days, as OpenAI's."""
MAX_LIST = 10_000
"""``GET /v1/files`` pages: OpenAI's default and maximum ``limit``."""


def _purpose(upload: Upload) -> str:
    purpose = upload.fields.get("purpose")
    if purpose is None:
        raise invalid("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter")
    if purpose not in PURPOSES:
        raise invalid(f"Invalid value for 'purpose': {purpose!r}. Supported values are: "
                      + ", ".join(repr(p) for p in PURPOSES) + ".", "purpose")
    return purpose


def _expires_after(upload: Upload) -> int | None:
    """``expires_after[anchor]`` / ``expires_after[seconds]``: how the SDKs send the object as form fields."""
    anchor = upload.fields.get("expires_after[anchor]")
    raw = upload.fields.get("expires_after[seconds]")
    if anchor is None and raw is None:
        return None
    if anchor != "created_at":
        raise invalid("Invalid value for 'expires_after.anchor': only 'created_at' is supported.",
                      "expires_after.anchor")
    seconds = whole_number(raw or "")
    if seconds is None or not EXPIRES_MIN_S <= seconds <= EXPIRES_MAX_S:
        raise invalid(f"Invalid value for 'expires_after.seconds': an integer from {EXPIRES_MIN_S} (one hour) "
                      f"to {EXPIRES_MAX_S} (30 days).", "expires_after.seconds")
    return seconds


_FIELDS = {"purpose", "expires_after[anchor]", "expires_after[seconds]"}


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    upload = await receive(request, st.files)
    try:
        for name in upload.fields:
            if name not in _FIELDS:
                raise invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        purpose, expires = _purpose(upload), _expires_after(upload)
        if upload.spool is None or not upload.filename:
            raise invalid("Missing required parameter: 'file' (a file part with a filename).", "file",
                          "missing_required_parameter")
        if "\x00" in upload.filename:
            raise invalid("Invalid 'file': the filename contains a NUL character.", "file")
        file = await st.files.add(tenant, upload.spool, filename=upload.filename, purpose=purpose,
                                  expires_after=expires)
    except BaseException:
        upload.discard()
        raise
    return json_response(file)


async def list_files(request: Request) -> Response:
    st = state(request)
    after, before, limit, order = list_params(request, default_limit=MAX_LIST, max_limit=MAX_LIST)
    if before is not None:
        raise invalid("Unknown parameter: 'before': the files list pages with 'after'.", "before",
                      "unknown_parameter")
    purpose = request.query_params.get("purpose")
    page = await st.files.list(st.tenant(request), after=after, limit=limit, order=order, purpose=purpose)
    return json_response(list_body(page.data, page.has_more))


async def retrieve(request: Request) -> Response:
    st = state(request)
    return json_response(await st.files.require(st.tenant(request), request.path_params["file_id"]))


async def content(request: Request) -> Response:
    st = state(request)
    tenant, file_id = st.tenant(request), request.path_params["file_id"]
    file = await st.files.require(tenant, file_id)
    name = file["filename"]
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StreamingResponse(st.files.chunks(tenant, file_id), media_type=media,
                             headers={"content-length": str(file["bytes"]),
                                      "content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


async def delete(request: Request) -> Response:
    st = state(request)
    file_id = request.path_params["file_id"]
    if not await st.files.delete(st.tenant(request), file_id):
        raise not_found(f"No such File object: {file_id}", "file_id", "file_not_found")
    return json_response({"id": file_id, "object": "file", "deleted": True})


routes = [
    Route("/v1/files", create, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve, methods=["GET"]),
    Route("/v1/files/{file_id}", delete, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", content, methods=["GET"]),
]
