"""WebSocket-mode additions of the current API: ``stream_id`` on every
event of a turn, ``generate: false`` (set up context without generating),
and a clear error for ``response.steer``, which is not implemented."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.api.test_websocket import error, send, text, ws_url
from tests.helpers import validate_stream


@pytest.fixture
def ws(server: str) -> Iterator[ClientConnection]:
    with connect(ws_url(server), additional_headers={"Authorization": "Bearer test-key"}) as conn:
        yield conn


def test_stream_id_is_on_every_event_of_its_turn(ws: ClientConnection) -> None:
    frames = send(ws, {"model": "test/echo", "input": "hi", "stream_id": "s-1"})
    assert {f.get("stream_id") for f in frames} == {"s-1"}
    validate_stream([{k: v for k, v in f.items() if k != "stream_id"} for f in frames])
    plain = send(ws, {"model": "test/echo", "input": "hi"})
    assert all("stream_id" not in f for f in plain)


def test_generate_false_prepares_a_continuable_turn(ws: ClientConnection) -> None:
    warm = send(ws, {"model": "test/echo", "input": "my name is Ada", "generate": False})[-1]["response"]
    assert warm["status"] == "completed" and warm["output"] == []
    later = send(ws, {"model": "test/echo", "previous_response_id": warm["id"], "input": "[[history]]"})
    assert "my name is Ada" in text(later[-1]["response"])


@pytest.mark.parametrize(("body", "param"), [({"stream_id": 5}, "stream_id"), ({"generate": "no"}, "generate")])
def test_bad_values_are_errors(ws: ClientConnection, body: dict[str, Any], param: str) -> None:
    assert error(ws, {"model": "test/echo", "input": "hi", **body})["error"]["param"] == param


def test_steer_is_refused_clearly(ws: ClientConnection) -> None:
    frame = error(ws, json.dumps({"type": "response.steer", "previous_response_id": "resp_x",
                                  "input": [{"type": "message", "role": "user", "content": "faster"}]}))
    assert frame["error"]["code"] == "invalid_event_type"
