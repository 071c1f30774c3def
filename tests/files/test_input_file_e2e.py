"""``input_file`` in ``/v1/responses`` and ``/v1/chat/completions`` end to
end, with the real ``openai`` SDK and the test model (which echoes the text
it was given, so the echo proves what reached the model), on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.files.pdfs import pdf_bytes
from tests.files.support import client_for
from tests.helpers import serve_in_thread, validate_response

PDF = pdf_bytes(["The owl's name is Hedwig."], ["She delivers letters."])
PDF_TEXT = "The owl's name is Hedwig.\n\nShe delivers letters."


def _ask(client: OpenAI, *parts: dict[str, Any], **kw: Any) -> Any:
    r = client.responses.create(model="test/echo", input=[{"role": "user", "content": list(parts)}], **kw)
    validate_response(r.model_dump(mode="json", exclude_unset=True))
    return r


def test_file_id_reaches_the_model_as_text(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    f = client.files.create(file=("owl.pdf", PDF, "application/pdf"), purpose="user_data")
    r = _ask(client, {"type": "input_file", "file_id": f.id}, {"type": "input_text", "text": " Who is the owl?"})
    assert r.output_text == f'<file name="owl.pdf">\n{PDF_TEXT}\n</file> Who is the owl?'
    stored = client.responses.input_items.list(r.id).data[0].content  # type: ignore[union-attr]
    assert stored[0].type == "input_file" and stored[0].file_id == f.id  # kept as sent, not as text

    # A chained turn sees the file again; once it is deleted, a note says so instead.
    again = _ask(client, {"type": "input_text", "text": "[[history]]"}, previous_response_id=r.id)
    assert again.output_text.startswith(f'user: <file name="owl.pdf">\n{PDF_TEXT}\n</file> Who is the owl? | ')
    client.files.delete(f.id)
    gone = _ask(client, {"type": "input_text", "text": "[[history]]"}, previous_response_id=r.id)
    assert gone.output_text.startswith(f"user: [file {f.id} is not available: No such File object")


def test_file_id_of_another_tenant_is_not_found(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    alice, bob = client_for(url), client_for(url)
    f = alice.files.create(file=("a.txt", b"alice's secret"), purpose="user_data")
    with pytest.raises(NotFoundError) as caught:
        _ask(bob, {"type": "input_file", "file_id": f.id})
    assert caught.value.body["param"] == "input[0].content[0].file_id"  # type: ignore[index]
    assert caught.value.body["code"] == "file_not_found"  # type: ignore[index]
    assert "secret" not in str(caught.value.body)
    png = alice.files.create(file=("p.png", b"\x89PNG\r\n\x1a\n" + bytes(32)), purpose="vision")
    with pytest.raises(BadRequestError) as bad:
        _ask(alice, {"type": "input_file", "file_id": png.id})
    assert bad.value.body["code"] == "unsupported_file"  # type: ignore[index]


def test_file_data_and_chat_completions_file_parts(files_server: tuple[str, Path]) -> None:
    url, _ = files_server
    client = client_for(url)
    data = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    r = _ask(client, {"type": "input_file", "filename": "owl.pdf", "file_data": data})
    assert r.output_text == f'<file name="owl.pdf">\n{PDF_TEXT}\n</file>'
    f = client.files.create(file=("menu.html", b"<h1>Menu</h1><p>Soup &amp; bread</p>"), purpose="user_data")
    chat = client.chat.completions.create(model="test/echo", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_id": f.id}}, {"type": "text", "text": "What is on it?"}]}])
    assert chat.choices[0].message.content == '<file name="menu.html">\nMenu\n\nSoup & bread\n</file>What is on it?'
    with pytest.raises(BadRequestError) as caught:
        _ask(client, {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,***"})
    assert caught.value.body["param"] == "input[0].content[0].file_data"  # type: ignore[index]


def test_a_file_returned_by_a_tool_reaches_the_model_too(files_server: tuple[str, Path]) -> None:
    """A tool's output may be content parts: a ``file_id`` there is this
    server's upload, which the upstream has never seen, so it is resolved
    like one in a message (and its errors name the output part)."""
    url, _ = files_server
    client = client_for(url)
    f = client.files.create(file=("menu.txt", b"Soup and bread"), purpose="user_data")
    call = {"type": "function_call", "call_id": "c1", "name": "read_menu", "arguments": "{}"}
    r = client.responses.create(model="test/echo", input=[call, {
        "type": "function_call_output", "call_id": "c1", "output": [{"type": "input_file", "file_id": f.id}]}])
    validate_response(r.model_dump(mode="json", exclude_unset=True))
    assert r.output_text == ('The read_menu tool returned: [{"type":"input_text","text":'
                             '"<file name=\\"menu.txt\\">\\nSoup and bread\\n</file>"}]')
    with pytest.raises(NotFoundError) as caught:
        client.responses.create(model="test/echo", input=[call, {
            "type": "function_call_output", "call_id": "c1",
            "output": [{"type": "input_file", "file_id": "file-nope"}]}])
    assert caught.value.body["param"] == "input[1].output[0].file_id"  # type: ignore[index]


@pytest.fixture(scope="module")
def document_host() -> Iterator[str]:
    """A web server on 127.0.0.1 serving a text file."""
    async def doc(request: Any) -> Response:
        return Response("Minutes: the meeting moved to Tuesday.", media_type="text/plain")

    with serve_in_thread(Starlette(routes=[Route("/minutes.txt", doc)])) as url:
        yield url


def test_file_url_is_fetched_through_the_guard(document_host: str, client: OpenAI,
                                              files_server: tuple[str, Path]) -> None:
    part = {"type": "input_file", "file_url": f"{document_host}/minutes.txt"}
    # The session server allow-lists 127.0.0.1 ([mcp] allow_private): fetched and read.
    r = _ask(client, part)
    assert r.output_text == '<file name="minutes.txt">\nMinutes: the meeting moved to Tuesday.\n</file>'
    # A server that does not is not made to fetch from its own network.
    with pytest.raises(BadRequestError) as caught:
        _ask(client_for(files_server[0]), part)
    assert caught.value.body["code"] == "file_url_refused"  # type: ignore[index]
    assert caught.value.body["param"] == "input[0].content[0].file_url"  # type: ignore[index]
