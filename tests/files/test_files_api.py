"""``/v1/files`` end to end with the real ``openai`` SDK, on a server over
SQLite (content on disk beside the database) and one over PostgreSQL
(content inside the database): upload, retrieve, download, list with
cursors, delete, tenants, the size limit and every refusal."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import APIStatusError, BadRequestError, NotFoundError, OpenAI
from openai.types import FileObject

from tests.files.pdfs import pdf_bytes
from tests.files.support import LIMIT, client_for

FILE_KEYS = set(FileObject.model_fields)


def _raw(url: str, client: OpenAI, path: str, method: str = "GET", *, headers: dict[str, str] | None = None,
         **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", headers={"authorization": f"Bearer {client.api_key}",
                                                          **(headers or {})}, timeout=30, **kw)


def test_upload_retrieve_download_delete(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    text = "Responsa keeps files.\nSecond line: ünïcödé.\n".encode()
    created = client.files.create(file=("notes.txt", text), purpose="assistants")
    assert created.id.startswith("file-") and created.object == "file" and created.status == "processed"
    assert (created.bytes, created.filename, created.purpose) == (len(text), "notes.txt", "assistants")
    assert abs(created.created_at - time.time()) < 60 and created.expires_at is None

    raw = _raw(url, client, f"/v1/files/{created.id}")
    assert raw.status_code == 200 and set(raw.json()) == FILE_KEYS  # exactly OpenAI's FileObject
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == text

    # Several storage chunks, arbitrary bytes: the content comes back byte for byte.
    blob = os.urandom(2 * 1024 * 1024 + 12345)
    big = client.files.create(file=("data.bin", blob), purpose="batch")
    got = client.files.content(big.id)
    assert got.read() == blob and big.bytes == len(blob)

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(NotFoundError) as caught:
            call(created.id)
        assert caught.value.body["code"] == "file_not_found"  # type: ignore[index]
    assert [f.id for f in client.files.list()] == [big.id]


def test_pdf_round_trip(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    pdf = pdf_bytes(["The owl's name is Hedwig."], ["Page two."])
    created = client.files.create(file=("owl.pdf", pdf, "application/pdf"), purpose="user_data")
    assert created.bytes == len(pdf) and created.filename == "owl.pdf"
    assert client.files.content(created.id).read() == pdf


def test_list_pages_with_cursors_and_filters(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    ids = [client.files.create(file=(f"f{i}.txt", f"file {i}".encode()),
                               purpose="user_data" if i % 2 else "assistants").id for i in range(5)]
    page = client.files.list(limit=2)
    assert [f.id for f in page.data] == ids[::-1][:2] and page.has_more
    assert [f.id for f in page] == ids[::-1]  # the SDK follows `after` to the end
    assert [f.id for f in client.files.list(order="asc", limit=3)] == ids
    assert [f.id for f in client.files.list(order="asc", after=ids[1])] == ids[2:]
    assert [f.id for f in client.files.list(purpose="user_data")] == [ids[3], ids[1]]
    listed = _raw(url, client, "/v1/files", params={"limit": 2, "order": "asc"}).json()
    assert listed["object"] == "list" and listed["first_id"] == ids[0] and listed["last_id"] == ids[1]
    assert all(set(f) == FILE_KEYS for f in listed["data"])
    with pytest.raises(BadRequestError) as caught:
        client.files.list(after="file-nope")
    assert caught.value.body["param"] == "after"  # type: ignore[index]
    with pytest.raises(BadRequestError):
        client.files.list(limit=0)


def test_tenants_never_see_each_others_files(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    alice, bob = client_for(url), client_for(url)
    secret = alice.files.create(file=("secret.txt", b"alice only"), purpose="assistants")
    assert [f.id for f in bob.files.list()] == []
    for call in (bob.files.retrieve, bob.files.content, bob.files.delete):
        with pytest.raises(NotFoundError):
            call(secret.id)
    with pytest.raises(BadRequestError):  # nor as a cursor of bob's list
        bob.files.list(after=secret.id)
    assert alice.files.content(secret.id).read() == b"alice only"


def test_size_limit_is_413_and_leaves_nothing(files_server: tuple[str, Path]) -> None:
    url, tmp = files_server
    client = client_for(url)
    with pytest.raises(APIStatusError) as caught:
        client.files.create(file=("huge.bin", b"x" * (LIMIT + 1)), purpose="assistants")
    assert caught.value.status_code == 413 and caught.value.body["code"] == "file_too_large"  # type: ignore[index]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n"
        for _ in range(LIMIT // 65536 + 2):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    r = _raw(url, client, "/v1/files", "POST", content=chunked(),
             headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"
    exactly = client.files.create(file=("edge.bin", b"z" * LIMIT), purpose="assistants")
    assert exactly.bytes == LIMIT
    assert [f.id for f in client.files.list()] == [exactly.id]
    spool = tmp / "responsa.db-files" / "spool"
    if spool.exists():
        assert list(spool.iterdir()) == []  # refused uploads were removed as they failed


def test_refusals_name_the_parameter(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"files": {"file": ("a.txt", b"a")}, "data": {"purpose": "fun"}}, "purpose"),
        ({"files": {"file": ("a.txt", b"a")}}, "purpose"),
        ({"data": {"purpose": "assistants"}, "files": {"other": ("a.txt", b"a")}}, "other"),
        ({"files": {"file": ("a.txt", b"a")}, "data": {"purpose": "assistants", "colour": "red"}}, "colour"),
        ({"files": {"file": ("a.txt", b"a")},
          "data": {"purpose": "assistants", "expires_after[anchor]": "created_at",
                   "expires_after[seconds]": "60"}}, "expires_after.seconds"),
        ({"files": {"file": ("a.txt", b"a")},
          "data": {"purpose": "assistants", "expires_after[anchor]": "last_active_at",
                   "expires_after[seconds]": "3600"}}, "expires_after.anchor"),
    ]
    for kw, param in cases:
        r = _raw(url, client, "/v1/files", "POST", **kw)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (param, r.text)
    r = _raw(url, client, "/v1/files", "POST", json={"purpose": "assistants"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"
    r = _raw(url, client, "/v1/files", "POST", content=b"--b\r\nnot a part",
             headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400
    assert [f.id for f in client.files.list()] == []


def test_expires_after(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    f = client.files.create(file=("t.txt", b"short-lived"), purpose="batch",
                            expires_after={"anchor": "created_at", "seconds": 3600})
    assert f.expires_at == f.created_at + 3600
    assert client.files.retrieve(f.id).expires_at == f.expires_at
