"""``input_file`` / ``input_image`` parts that name files, as each kind of
provider receives them (``engine/file_inputs.py``), over a real SQLite store
and its files: text for models that take no files, the file itself for
upstreams that read it, and the errors a client can act on."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from responsa.config import load_settings
from responsa.engine.file_inputs import inline
from responsa.files import FileStore, open_files
from responsa.protocol.errors import ResponsaError
from responsa.protocol.items import normalize_input
from responsa.store import open_store
from tests.files.pdfs import pdf_bytes

TENANT, OTHER = "tenant-a", "tenant-b"
PDF = pdf_bytes(["Quarterly revenue rose 12 percent."])
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJ"
                         "RU5ErkJggg==")


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[FileStore]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path / 'f.db'}")
    store = open_store(settings.database_url)
    await store.open()
    try:
        yield open_files(settings, store)
    finally:
        await store.close()


async def _upload(files: FileStore, name: str, data: bytes, tenant: str = TENANT) -> str:
    spool = files.spool()
    await spool.write(data)
    file = await files.add(tenant, spool, filename=name, purpose="user_data")
    return str(file["id"])


async def _resolve(files: FileStore, parts: list[dict[str, Any]], native: frozenset[str] = frozenset(),
                   history: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    new = normalize_input([{"role": "user", "content": parts}])
    context = [*(history or []), *new]
    out = await inline(context, new, files=files, tenant=TENANT, native=native, allow_private=[])
    assert new[0]["content"][0] == parts[0] | new[0]["content"][0], "the stored input keeps what was sent"
    return list(out[-1]["content"])


def _data(url: str) -> tuple[str, bytes]:
    header, _, payload = url.partition(",")
    return header, base64.b64decode(payload)


async def test_models_without_files_get_the_text(files: FileStore) -> None:
    pdf_id = await _upload(files, "report.pdf", PDF)
    md_id = await _upload(files, "notes.md", b"# Notes\n- buy milk\n")
    parts = await _resolve(files, [{"type": "input_file", "file_id": pdf_id},
                                   {"type": "input_file", "file_id": md_id, "filename": "renamed.md"},
                                   {"type": "input_text", "text": "Summarise."}])
    assert parts == [
        {"type": "input_text", "text": '<file name="report.pdf">\nQuarterly revenue rose 12 percent.\n</file>'},
        {"type": "input_text", "text": '<file name="renamed.md">\n# Notes\n- buy milk\n\n</file>'},
        {"type": "input_text", "text": "Summarise."}]
    inline_md = "data:text/markdown;base64," + base64.b64encode(b"*inline*").decode()
    inline_pdf = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    parts = await _resolve(files, [{"type": "input_file", "filename": "a.md", "file_data": inline_md},
                                   {"type": "input_file", "filename": "b.pdf", "file_data": inline_pdf}])
    assert [p["text"] for p in parts] == ['<file name="a.md">\n*inline*\n</file>',
                                          '<file name="b.pdf">\nQuarterly revenue rose 12 percent.\n</file>']


async def test_upstreams_that_read_files_get_the_file(files: FileStore) -> None:
    pdf_id = await _upload(files, "report.pdf", PDF)
    md_id = await _upload(files, "notes.md", b"plain notes")
    sent = {"type": "input_file", "filename": "x.txt", "file_data": "data:text/plain;base64,aGk="}
    url = {"type": "input_file", "file_url": "https://example.com/a.pdf"}
    parts = await _resolve(files, [{"type": "input_file", "file_id": pdf_id}, {"type": "input_file", "file_id": md_id},
                                   sent, url], native=frozenset({"*"}))  # an OpenAI Responses upstream
    assert parts[0]["type"] == "input_file" and parts[0]["filename"] == "report.pdf"
    assert _data(parts[0]["file_data"]) == ("data:application/pdf;base64", PDF)  # the upstream has no file_id
    assert parts[1] == {"type": "input_text", "text": '<file name="notes.md">\nplain notes\n</file>'}
    assert parts[2:] == [sent, url]  # as sent: it decodes and fetches them itself
    anthropic = await _resolve(files, [{"type": "input_file", "file_id": pdf_id}, sent],
                               native=frozenset({"application/pdf"}))
    assert _data(anthropic[0]["file_data"])[1] == PDF
    assert anthropic[1] == {"type": "input_text", "text": '<file name="x.txt">\nhi\n</file>'}


async def test_uploaded_image_becomes_a_data_url(files: FileStore) -> None:
    image_id = await _upload(files, "pixel.png", PIXEL)
    parts = await _resolve(files, [{"type": "input_image", "file_id": image_id, "detail": "low"}])
    assert parts[0]["detail"] == "low" and _data(parts[0]["image_url"]) == ("data:image/png;base64", PIXEL)
    text_id = await _upload(files, "notes.txt", b"not an image")
    with pytest.raises(ResponsaError) as caught:
        await _resolve(files, [{"type": "input_image", "file_id": text_id}])
    assert caught.value.status == 400 and caught.value.param == "input[0].content[0].file_id"


async def test_errors_name_the_part(files: FileStore) -> None:
    theirs = await _upload(files, "theirs.txt", b"secret", tenant=OTHER)
    png_id = await _upload(files, "pixel.png", PIXEL)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"type": "input_file", "file_id": theirs}, 404, "file_id", "file_not_found"),
        ({"type": "input_file", "file_id": "file-nope"}, 404, "file_id", "file_not_found"),
        ({"type": "input_file", "file_id": png_id}, 400, "file_id", "unsupported_file"),
        ({"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,!!"}, 400, "file_data",
         "invalid_value"),
        ({"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain,hi"}, 400, "file_data",
         "invalid_value"),
        ({"type": "input_file", "file_url": "ftp://example.com/a.txt"}, 400, "file_url", "invalid_value"),
        ({"type": "input_file", "file_url": "http://127.0.0.1:9/a.txt"}, 400, "file_url", "file_url_refused"),
        ({"type": "input_file", "file_url": "http://169.254.169.254/latest/meta-data"}, 400, "file_url",
         "file_url_refused"),
    ]
    for part, status, field, code in cases:
        with pytest.raises(ResponsaError) as caught:
            await _resolve(files, [{"type": "input_text", "text": "x"}, part])
        assert (caught.value.status, caught.value.param, caught.value.code) == (
            status, f"input[0].content[1].{field}", code), part


async def test_an_earlier_turns_missing_file_becomes_a_note(files: FileStore) -> None:
    gone = await _upload(files, "old.txt", b"old")
    earlier = normalize_input([{"role": "user", "content": [{"type": "input_file", "file_id": gone}]}])
    assert await files.delete(TENANT, gone)
    new = normalize_input("and now?")
    out = await inline([*earlier, *new], new, files=files, tenant=TENANT, native=frozenset(), allow_private=[])
    assert out[0]["content"][0]["type"] == "input_text" and gone in out[0]["content"][0]["text"]
    assert "No such File object" in out[0]["content"][0]["text"]
    assert earlier[0]["content"][0] == {"type": "input_file", "file_id": gone}
