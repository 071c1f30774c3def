"""``multipart/form-data`` uploads, streamed: the file part goes straight
into a ``Spool`` (counted against ``max_file_bytes`` as it arrives, so an
oversized upload stops with a 413 at the limit, not after), the few text
fields are kept up to ``FIELD_BYTES`` each. ``python-multipart`` (the parser
Starlette's own form parsing uses) does the parsing; Starlette's
``request.form()`` is not used because it spools every file to a
temporary file of its own, unbounded, that would then be copied again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from responsa.files.store import FileStore, Spool, too_large
from responsa.protocol.errors import APIError, invalid

FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
ENVELOPE_BYTES = 1024 * 1024
"""Multipart framing and text fields allowed on top of the file itself."""


@dataclass(slots=True)
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    spool: Spool | None = None
    filename: str | None = None
    content_type: str | None = None

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()


@dataclass(slots=True)
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    data: bytearray = field(default_factory=bytearray)
    is_file: bool = False


class _Collector:
    """python-multipart's callbacks, turned into a list of things to do
    (the parser is synchronous; writing to the spool is not)."""

    def __init__(self) -> None:
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.file_data: list[bytes] = []
        self.finished: list[_Part] = []
        self.opened: list[_Part] = []
        self.fields = 0

    def callbacks(self) -> Any:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished}

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.file_data.append(bytes(data[start:end]))
            return
        if len(self.part.data) + end - start > FIELD_BYTES:
            raise invalid(f"Form field '{self.part.name}' is longer than {FIELD_BYTES} bytes.", self.part.name)
        self.part.data += data[start:end]

    def on_part_end(self) -> None:
        self.finished.append(self.part)

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.header_name.lower()] = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise invalid("Each multipart part needs a Content-Disposition header with a 'name'.", None,
                          "invalid_multipart")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise invalid(f"Too many multipart fields (at most {MAX_FIELDS}).", None, "invalid_multipart")
        if b"filename" in options:
            self.part.is_file = True
            self.part.data = bytearray(options[b"filename"])
            self.opened.append(self.part)


async def receive(request: Request, files: FileStore, file_field: str = "file") -> Upload:
    """The form's text fields and its ``file_field`` part, spooled; the
    caller ``discard``s the upload unless a backend took the spool."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise invalid("Send the file as multipart/form-data (fields 'file' and 'purpose').", None,
                      "invalid_content_type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > files.max_bytes + ENVELOPE_BYTES:
        raise too_large(files.max_bytes)
    collector = _Collector()
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    upload = Upload()
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > files.max_bytes + ENVELOPE_BYTES:
                raise too_large(files.max_bytes)
            parser.write(chunk)
            await _drain(collector, upload, files, file_field)
        parser.finalize()
        await _drain(collector, upload, files, file_field)
    except MultipartParseError as exc:
        upload.discard()
        raise invalid(f"The multipart body could not be parsed: {exc}.", None, "invalid_multipart") from None
    except BaseException:
        upload.discard()
        raise
    return upload


async def _drain(collector: _Collector, upload: Upload, files: FileStore, file_field: str) -> None:
    for part in collector.opened:
        if part.name != file_field:
            raise invalid(f"Unexpected file in form field '{part.name}': send the file as '{file_field}'.",
                          part.name, "unknown_parameter")
        if upload.spool is not None:
            raise invalid(f"Send one file per upload (field '{file_field}' came twice).", file_field)
        upload.spool = files.spool()
        upload.filename = part.data.decode("utf-8", "replace")
        ctype = part.headers.get(b"content-type")
        upload.content_type = ctype.decode("latin-1") if ctype else None
    collector.opened.clear()
    for data in collector.file_data:
        if upload.spool is None:  # cannot happen: data follows its part's headers
            raise APIError("Malformed multipart body.", code="invalid_multipart")
        await upload.spool.write(data)
    collector.file_data.clear()
    for part in collector.finished:
        if not part.is_file:
            upload.fields[part.name] = part.data.decode("utf-8", "replace")
    collector.finished.clear()
