"""WebSocket mode end to end: a real server, the ``websockets`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from responsa.api import websocket
from tests.helpers import Serve, server_settings, validate_response, validate_stream

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "/v1/responses"


@pytest.fixture
def ws(server: str) -> Iterator[ClientConnection]:
    with connect(ws_url(server), additional_headers={"Authorization": "Bearer test-key"}) as conn:
        yield conn


def send(conn: ClientConnection, body: dict[str, Any] | str) -> list[dict[str, Any]]:
    """One turn: every frame up to and including its terminal or error frame."""
    conn.send(body if isinstance(body, str) else json.dumps({"type": "response.create", **body}))
    frames = []
    while True:
        frame = json.loads(conn.recv(timeout=10))
        frames.append(frame)
        if frame["type"] in TERMINAL or frame["type"] == "error":
            return frames


def completed(conn: ClientConnection, **body: Any) -> dict[str, Any]:
    frames = send(conn, body)
    validate_stream(frames)
    final: dict[str, Any] = frames[-1]["response"]
    validate_response(final)
    assert final["status"] == "completed", final
    return final


def error(conn: ClientConnection, body: dict[str, Any] | str) -> dict[str, Any]:
    frames = send(conn, body)
    assert len(frames) == 1, frames
    frame = frames[0]
    assert set(frame) == {"type", "status", "error"}
    assert isinstance(frame["status"], int) and frame["status"] >= 400
    assert isinstance(frame["error"]["code"], str) and isinstance(frame["error"]["message"], str)
    assert set(frame["error"]) == {"type", "code", "message", "param"}
    return frame


def text(response: dict[str, Any]) -> str:
    return "".join(p["text"] for it in response["output"] if it["type"] == "message" for p in it["content"])


def test_turns_on_one_socket_persist_like_http(ws: ClientConnection, http: httpx.Client) -> None:
    first = completed(ws, input="Reply with exactly: first")
    assert text(first) == "first"
    second = completed(ws, previous_response_id=first["id"], input="[[history]]")
    assert text(second).startswith("user: Reply with exactly: first | assistant: first | user:")
    # store defaults to true: both are persisted, and the POST route still works on the same path
    stored = http.get(f"/v1/responses/{second['id']}").json()
    assert stored["output"] == second["output"]
    third = http.post("/v1/responses", json={"previous_response_id": second["id"], "input": "Reply with exactly: ok"})
    assert third.status_code == 200 and third.json()["output"][0]["content"][0]["text"] == "ok"


def test_store_false_continues_only_on_its_connection(server: str, ws: ClientConnection,
                                                      http: httpx.Client) -> None:
    first = completed(ws, store=False, input="Remember the code word: cobalt.")
    second = completed(ws, store=False, previous_response_id=first["id"], input="[[history]]")
    assert "cobalt" in text(second)
    assert http.get(f"/v1/responses/{first['id']}").status_code == 404
    with connect(ws_url(server), additional_headers={"x-api-key": "test-key"}) as other:
        frame = error(other, {"store": False, "previous_response_id": second["id"], "input": "more"})
        assert frame["status"] == 404
        assert frame["error"] == {"type": "invalid_request_error", "code": "previous_response_not_found",
                                  "message": f"Previous response with id '{second['id']}' not found.",
                                  "param": "previous_response_id"}
        # the socket stays open after an error and starts a new chain
        assert text(completed(other, store=False, input="Reply with exactly: recovered")) == "recovered"


def test_unknown_previous_response(ws: ClientConnection) -> None:
    frame = error(ws, {"store": False, "previous_response_id": "resp_missing", "input": "x"})
    assert frame["error"]["code"] == "previous_response_not_found"


def test_failed_continuation_evicts_previous_response(ws: ClientConnection) -> None:
    first = completed(ws, store=False, input="Remember the code word: ember.")
    frame = error(ws, {"store": False, "previous_response_id": first["id"],
                       "input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]})
    assert frame["status"] == 400 and frame["error"]["code"] == "tool_call_not_found"
    frame = error(ws, {"store": False, "previous_response_id": first["id"], "input": "again"})
    assert frame["error"]["code"] == "previous_response_not_found"


def test_upstream_failure_is_one_terminal_and_evicts(ws: ClientConnection) -> None:
    first = completed(ws, store=False, input="hello")
    frames = send(ws, {"store": False, "previous_response_id": first["id"], "input": "[[error:500]]"})
    validate_stream(frames)
    assert frames[-1]["type"] == "response.failed"
    assert [f["type"] for f in frames].count("error") == 0, "the failed terminal is the turn's only end"
    assert frames[-1]["response"]["error"]["code"] == "upstream_error"
    frame = error(ws, {"store": False, "previous_response_id": first["id"], "input": "again"})
    assert frame["error"]["code"] == "previous_response_not_found"
    # a failure without a previous response leaves the cache alone
    assert text(completed(ws, store=False, input="Reply with exactly: fine")) == "fine"


@pytest.mark.parametrize(("frame", "code", "param"), [
    ("not json", "invalid_json", None),
    ("[1, 2]", "invalid_json", None),
    (json.dumps({"type": "response.cancel"}), "invalid_event_type", "type"),
    (json.dumps({"input": "no type"}), "invalid_event_type", "type"),
    (json.dumps({"type": "response.create", "input": "x", "stream": True}), "unsupported_parameter", "stream"),
    (json.dumps({"type": "response.create", "input": "x", "background": False}), "unsupported_parameter",
     "background"),
    (json.dumps({"type": "response.create", "input": "x", "stream_options": {}}), "unsupported_parameter",
     "stream_options"),
    (json.dumps({"type": "response.create", "input": "x", "temperature": 9}), "invalid_value", "temperature"),
    (json.dumps({"type": "response.create", "input": "x", "bogus": 1}), "unknown_parameter", "bogus"),
    (json.dumps({"type": "response.create", "model": "nope/x", "input": "x"}), "model_not_found", "model"),
])
def test_malformed_frames_get_an_error_and_the_socket_stays_open(ws: ClientConnection, frame: str, code: str,
                                                                  param: str | None) -> None:
    err = error(ws, frame)
    assert err["status"] in (400, 404)
    assert (err["error"]["code"], err["error"]["param"]) == (code, param)
    assert text(completed(ws, input="Reply with exactly: still here")) == "still here"


def test_turns_are_sequential(ws: ClientConnection) -> None:
    """Two frames sent at once are answered one turn after the other."""
    ws.send(json.dumps({"type": "response.create", "store": False, "input": "[[delay:20]] one two three"}))
    ws.send(json.dumps({"type": "response.create", "store": False, "input": "Reply with exactly: next"}))
    frames = [json.loads(ws.recv(timeout=10))]
    while sum(f["type"] in TERMINAL for f in frames) < 2:
        frames.append(json.loads(ws.recv(timeout=10)))
    end = next(i for i, f in enumerate(frames) if f["type"] in TERMINAL)
    validate_stream(frames[:end + 1])
    validate_stream(frames[end + 1:])
    assert text(frames[-1]["response"]) == "next"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory, serve_responsa: Serve) -> Iterator[str]:
    with serve_responsa(server_settings(tmp_path_factory.mktemp("wsauth"), api_keys=["k1"])) as url:
        yield url


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}])
def test_upgrade_requires_a_valid_key(locked_server: str, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(locked_server), additional_headers=headers)
    assert info.value.response.status_code == 401
    body = json.loads(info.value.response.body or b"{}")
    assert body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer k1"}, {"x-api-key": "k1"}])
def test_upgrade_with_a_valid_key(locked_server: str, headers: dict[str, str]) -> None:
    with connect(ws_url(locked_server), additional_headers=headers) as conn:
        assert text(completed(conn, input="Reply with exactly: in")) == "in"


def test_connection_limit(locked_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the (here shortened) connection limit the server says so and closes."""
    monkeypatch.setattr(websocket, "CONNECTION_LIMIT_S", 0.3)
    with connect(ws_url(locked_server), additional_headers={"x-api-key": "k1"}) as conn:
        completed(conn, input="hello")
        frame = json.loads(conn.recv(timeout=5))
        assert frame["type"] == "error" and frame["error"]["code"] == "websocket_connection_limit_reached"
        with pytest.raises(ConnectionClosedOK):
            conn.recv(timeout=5)
