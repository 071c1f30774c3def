"""MCP in the reference form (``mcp_servers`` + ``credentials``) driven
with the reference client, ``dedalus_labs`` 0.3.0: slugs through the
operator's registry (HTTP and stdio), URLs, credentials matched by
connection name and never stored or logged, the summary fields it reads."""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dedalus_labs
import httpx
import pytest
from dedalus_labs import Dedalus

from tests.helpers import Serve, server_settings, validate_response
from tests.tools.support import TOKEN

STDIO_SERVER = Path(__file__).with_name("stdio_server.py")


def dedalus(base_url: str) -> Dedalus:
    # as_base_url="" makes the client send credentials as plain JSON instead
    # of encrypting them for Dedalus' own authorization server.
    return Dedalus(api_key="test-key", base_url=base_url, as_base_url="", max_retries=0)


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory, mcp_private: str, mcp_http: str,
                    serve_responsa: Serve) -> Iterator[str]:
    """A server whose MCP registry knows ``acme/vault`` (the bearer-token
    server, credential as a formatted header), ``acme/calc`` (v1 pinned) and
    ``acme/stdio-vault`` (a stdio process, credential as an env var)."""
    registry = {
        "acme/vault": {"url": mcp_private, "connection_name": "vault", "credential_header": "Authorization",
                       "credential_format": "Bearer {api_key}"},
        "acme/calc": {"url": "http://127.0.0.1:9/mcp", "versions": {"v1": {"url": mcp_http}}},
        "acme/stdio-vault": {"command": sys.executable, "args": [str(STDIO_SERVER)],
                             "credential_env": {"VAULT_TOKEN": "{token}"}},
    }
    # No private allow-list: registry entries are trusted.
    with serve_responsa(server_settings(tmp_path_factory.mktemp("registry"), mcp_registry=registry)) as url:
        yield url


def test_url_server_with_credentials_leaves_no_trace(server: str, mcp_private: str, db_file: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    netloc = urlsplit(mcp_private).netloc
    resp = dedalus(server).responses.create(
        model="test/echo", input='[[call:add {"a": 40, "b": 2}]]', mcp_servers=[mcp_private],
        credentials=[{"connection_name": netloc, "values": {"token": TOKEN}}])
    data = resp.to_dict()
    validate_response(data)
    assert resp.status == "completed"
    assert resp.tools_executed == ["add"]
    result = resp.mcp_tool_results[0]  # type: ignore[index]
    assert (result.server_name, result.tool_name, result.arguments, result.result, result.is_error) == \
        (netloc, "add", {"a": 40, "b": 2}, "42", False)
    assert result.duration_ms is not None and result.duration_ms >= 0
    assert [o["type"] for o in data["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert not resp.mcp_server_errors
    stored = httpx.get(f"{server}/v1/responses/{resp.id}", headers={"authorization": "Bearer test-key"}).text
    assert TOKEN not in stored and TOKEN not in resp.to_json()
    for path in (db_file, db_file.with_name(db_file.name + "-wal")):
        if path.exists():
            assert TOKEN.encode() not in path.read_bytes(), path
    # Everything the server side logged (at DEBUG, MCP SDK and HTTP internals
    # included); the client under test runs in this process and logs its own
    # request body, which is not the server's doing.
    server_side = [r for r in caplog.records if not r.name.startswith("dedalus_labs")]
    assert len(server_side) > 10
    assert all(TOKEN not in r.getMessage() for r in server_side)


def test_missing_credentials_become_a_server_error(server: str, mcp_private: str) -> None:
    resp = dedalus(server).responses.create(model="test/echo", input="hello", mcp_servers=mcp_private)
    assert resp.status == "completed" and resp.mcp_server_errors
    (name, err), = resp.mcp_server_errors.items()
    assert name == urlsplit(mcp_private).netloc and err.message and err.code and err.recommendation


def test_slug_with_formatted_credential_header(registry_server: str) -> None:
    resp = dedalus(registry_server).responses.create(
        model=["test/echo", "test/backup"], input='[[call:shout {"text": "vault"}]]', mcp_servers="acme/vault",
        credentials={"connection_name": "vault", "values": {"api_key": TOKEN}})
    assert resp.tools_executed == ["shout"]
    result = resp.mcp_tool_results[0]  # type: ignore[index]
    assert (result.server_name, result.result) == ("acme/vault", "VAULT")
    assert resp.to_dict()["output"][-1]["content"][0]["text"] == "The shout tool returned: VAULT"


def test_versioned_slug_and_object_forms(registry_server: str, mcp_http: str) -> None:
    client = dedalus(registry_server)
    for servers in (["acme/calc@v1"], [{"slug": "acme/calc", "version": "v1"}]):
        resp = client.responses.create(model="test/echo", input='[[call:add {"a": 1, "b": 2}]]', mcp_servers=servers)
        assert resp.mcp_tool_results[0].result == "3", servers  # type: ignore[index]
    unpinned = client.responses.create(model="test/echo", input="hello", mcp_servers=["acme/calc"])
    assert "acme/calc" in (unpinned.mcp_server_errors or {})


@pytest.mark.slow  # starts the MCP server as a process
def test_stdio_server_gets_the_credential_in_its_environment(registry_server: str) -> None:
    resp = dedalus(registry_server).responses.create(
        model="test/echo", input="[[call:token_digest {}]]", mcp_servers=["acme/stdio-vault"],
        credentials=[{"connection_name": "acme/stdio-vault", "values": {"token": TOKEN}}])
    assert resp.mcp_tool_results[0].result == hashlib.sha256(TOKEN.encode()).hexdigest()  # type: ignore[index]


def test_two_servers_in_one_request(server: str, mcp_http: str, mcp_sse: str) -> None:
    resp = dedalus(server).responses.create(model="test/echo", input="hello", mcp_servers=[mcp_http, mcp_sse])
    data = resp.to_dict()
    assert [o["type"] for o in data["output"]][:2] == ["mcp_list_tools", "mcp_list_tools"]
    names = {o["server_label"] for o in data["output"][:2]}
    assert names == {urlsplit(mcp_http).netloc, urlsplit(mcp_sse).netloc}


def test_namespaced_names_reach_the_right_server(server: str, mcp_http: str, mcp_sse: str) -> None:
    """Both servers offer ``add``, so the model sees ``<label>__add``."""
    label = urlsplit(mcp_sse).netloc.replace(".", "_").replace(":", "_")
    resp = dedalus(server).responses.create(
        model="test/echo", input=f'[[call:{label}__add {{"a": 5, "b": 6}}]]', mcp_servers=[mcp_http, mcp_sse])
    result = resp.mcp_tool_results[0]  # type: ignore[index]
    assert (result.server_name, result.tool_name, result.result) == (urlsplit(mcp_sse).netloc, "add", "11")


@pytest.mark.parametrize("kwargs, param", [
    ({"mcp_servers": ["nobody/nothing"]}, "mcp_servers[0]"),
    ({"mcp_servers": ["acme/vault"], "credentials": [{"connection_name": "other", "values": {"a": "b"}}]},
     "credentials.connection_name"),
    ({"credentials": [{"connection_name": "vault", "values": {"api_key": "x"}}]}, "credentials"),
    ({"mcp_servers": ["acme/vault"], "credentials": [{"connection_name": "vault", "values": {"token": "x"}}]},
     "credentials"),
])
def test_bad_reference_requests_are_400(registry_server: str, kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(dedalus_labs.BadRequestError) as err:
        dedalus(registry_server).responses.create(model="test/echo", input="hi", **kwargs)  # type: ignore[arg-type]
    assert err.value.response.json()["error"]["param"] == param, err.value.response.text
