"""Background mode end to end with the real ``openai`` client: queued at
once, polled, cancelled, streamed and resumed after a disconnect, and
recovered after the server process is killed mid-response."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import (
    holds_for,
    parse_sse,
    serve_in_thread,
    server_process,
    validate_event,
    validate_response,
    validate_stream,
    wait_until,
)
from tests.store.backends import (
    REDIS_URL,
    admin,
    in_own_loop,
    new_schema_name,
    reachable_postgres,
    redis_error,
    with_search_path,
)

FINISHED = ("completed", "failed", "incomplete", "cancelled")


def dump(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = obj.model_dump(mode="json", exclude_unset=True)
    return data


def wait_for(client: OpenAI, rid: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
    """The response, polled (and validated) until ``done(response)``."""
    last: dict[str, Any] = {}

    def poll() -> dict[str, Any] | None:
        last.update(r := dump(client.responses.retrieve(rid)))
        validate_response(r)
        return r if done(r) else None

    return wait_until(poll, timeout, what=lambda: f"response {rid}, stuck at {last.get('status')}")


def follow_to_first_delta(client: OpenAI, rid: str) -> None:
    """Follow a running background response until its first text delta: a
    follower only sees events after they are stored, so output now exists."""
    with client.responses.retrieve(rid, stream=True) as stream:
        for ev in stream:
            if ev.type == "response.output_text.delta":
                return
    raise AssertionError(f"response {rid} ended without any text")


def nothing_stored_after(client: OpenAI, rid: str, last: int) -> Callable[[], bool]:
    def check() -> bool:
        with client.responses.retrieve(rid, stream=True, starting_after=last) as stream:
            return [dump(ev) for ev in stream] == []
    return check


def check_resumed(events: list[dict[str, Any]], after: int) -> None:
    """A resumed stream: valid events numbered after..., one terminal, last."""
    assert events, "no events"
    for i, ev in enumerate(events):
        validate_event(ev)
        assert ev["sequence_number"] == after + 1 + i
    terminal = [e for e in events if e["type"] in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1 and terminal[0] is events[-1]


def test_background_requires_store(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="test/echo", input="hi", background=True, store=False)
    assert err.value.body["param"] == "background"  # type: ignore[index]


def test_background_returns_queued_then_completes(client: OpenAI) -> None:
    r = client.responses.create(model="test/echo", input="[[delay:20]] [[long:30]]", background=True)
    first = dump(r)
    validate_response(first)
    assert first["status"] == "queued" and first["background"] is True and first["output"] == []
    # It did not wait for the ~0.6 s turn (said by state, not by a wall-clock bound that flakes on a busy box).
    assert dump(client.responses.retrieve(r.id))["status"] in ("queued", "in_progress")
    done = wait_for(client, r.id, lambda x: x["status"] in FINISHED)
    assert done["status"] == "completed"
    assert len(done["output"][0]["content"][0]["text"].split()) == 30
    # Its stored events replay as one valid stream from 0.
    with client.responses.retrieve(r.id, stream=True) as stream:
        events = [dump(ev) for ev in stream]
    validate_stream(events)
    assert [e["type"] for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0]["response"]["status"] == "queued"
    assert events[-1]["response"]["output"] == done["output"]


def test_background_stream_and_resume_after_disconnect(client: OpenAI) -> None:
    stream = client.responses.create(model="test/echo", input="[[delay:15]] [[long:40]]", background=True,
                                     stream=True)
    seen = []
    for ev in stream:
        seen.append(dump(ev))
        if len(seen) == 8:
            break
    stream.close()  # the client goes away; the response does not
    validate_stream_prefix(seen)
    rid = seen[0]["response"]["id"]
    last = seen[-1]["sequence_number"]
    with client.responses.retrieve(rid, stream=True, starting_after=last) as resumed:
        rest = [dump(ev) for ev in resumed]
    check_resumed(rest, last)
    assert rest[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in seen + rest if e["type"] == "response.output_text.delta")
    assert len(text.split()) == 40
    final = dump(client.responses.retrieve(rid))
    validate_response(final)
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == text
    # Resuming from the middle again gives the same tail.
    with client.responses.retrieve(rid, stream=True, starting_after=last) as again:
        assert [dump(ev) for ev in again] == rest


def validate_stream_prefix(events: list[dict[str, Any]]) -> None:
    for i, ev in enumerate(events):
        validate_event(ev)
        assert ev["sequence_number"] == i


def test_two_followers_see_the_same_live_stream(client: OpenAI, http: httpx.Client) -> None:
    r = client.responses.create(model="test/echo", input="[[delay:10]] [[long:20]]", background=True)
    with client.responses.retrieve(r.id, stream=True) as a:
        first = [dump(ev) for ev in a]
    raw = http.get(f"/v1/responses/{r.id}", params={"stream": "true", "starting_after": "-1"})
    second, done = parse_sse(raw.content)
    assert done
    validate_stream(first)
    assert first == second


def test_cancel(client: OpenAI, http: httpx.Client) -> None:
    r = client.responses.create(model="test/echo", input="[[delay:100]] [[long:100]]", background=True)
    wait_for(client, r.id, lambda x: x["status"] == "in_progress")
    follow_to_first_delta(client, r.id)  # some output exists
    cancelled = dump(client.responses.cancel(r.id))
    validate_response(cancelled)
    assert cancelled["status"] == "cancelled" and cancelled["error"] is None
    assert all(item.get("status") != "in_progress" for item in cancelled["output"])
    again = dump(client.responses.cancel(r.id))  # idempotent
    assert again == cancelled
    assert dump(client.responses.retrieve(r.id)) == cancelled
    with client.responses.retrieve(r.id, stream=True) as stream:
        events = [dump(ev) for ev in stream]
    validate_stream(events)
    assert events[-1]["type"] == "response.failed" and events[-1]["response"]["status"] == "cancelled"
    # It really stopped: nothing is stored after the terminal event (an absence: watched for a while).
    holds_for(nothing_stored_after(client, r.id, events[-1]["sequence_number"]), 0.3)

    done = client.responses.create(model="test/echo", input="quick", background=True)
    finished = wait_for(client, done.id, lambda x: x["status"] in FINISHED)
    assert dump(client.responses.cancel(done.id)) == finished  # finished: returned unchanged

    plain = client.responses.create(model="test/echo", input="not background")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.cancel(plain.id)
    assert err.value.body["message"] == "Only background responses can be cancelled."  # type: ignore[index]
    assert http.post("/v1/responses/resp_nope/cancel").status_code == 404


def test_cancel_while_streaming_ends_the_stream(client: OpenAI) -> None:
    stream = client.responses.create(model="test/echo", input="[[delay:50]] [[long:200]]", background=True,
                                     stream=True)
    events = []
    for ev in stream:
        events.append(dump(ev))
        if ev.type == "response.output_text.delta":
            client.responses.cancel(events[0]["response"]["id"])
            break
    events += [dump(ev) for ev in stream]  # the live stream ends by itself
    validate_stream(events)
    assert events[-1]["response"]["status"] == "cancelled"


# -- restart recovery: a real server process, killed -9 mid-response -------------------------------


RESTARTABLE = {"RESPONSA_BACKGROUND_LEASE_S": "1", "RESPONSA_BACKGROUND_CONCURRENCY": "1"}


def test_restart_recovers_background_responses(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    with server_process(f"sqlite:///{db}", env=RESTARTABLE) as (proc, url):
        client = OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        running = client.responses.create(model="test/echo", input="[[delay:200]] [[long:50]]", background=True)
        waiting = client.responses.create(model="test/echo", input="[[long:5]]", background=True)  # one slot
        wait_for(client, running.id, lambda x: x["status"] == "in_progress")
        follow_to_first_delta(client, running.id)  # some events stored
        assert dump(client.responses.retrieve(waiting.id))["status"] == "queued"
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    with server_process(f"sqlite:///{db}", env=RESTARTABLE) as (_, url):
        client = OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        started = time.monotonic()
        lost = wait_for(client, running.id, lambda x: x["status"] in FINISHED, timeout=10)
        assert lost["status"] == "failed" and lost["error"]["code"] == "worker_lost"
        assert "restarted" in lost["error"]["message"]
        rerun = wait_for(client, waiting.id, lambda x: x["status"] in FINISHED, timeout=10)
        assert rerun["status"] == "completed" and len(rerun["output"][0]["content"][0]["text"].split()) == 5
        assert time.monotonic() - started < 5
        # The lost response's stream: what was stored before the crash, then error + response.failed
        # (raw SSE: the openai client raises on the error event).
        raw = httpx.get(f"{url}/v1/responses/{running.id}", params={"stream": "true"}, timeout=10,
                        headers={"authorization": "Bearer k"})
        events, done = parse_sse(raw.content)
        assert done
        validate_stream(events)
        assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
        assert any(e["type"] == "response.output_text.delta" for e in events)
        with client.responses.retrieve(waiting.id, stream=True) as stream:
            validate_stream([dump(ev) for ev in stream])


# -- two replicas on one PostgreSQL + Redis: resume and cancel where the job is not running -------


@pytest.fixture
def two_replicas() -> Iterator[tuple[str, str]]:
    pg, errors = in_own_loop(reachable_postgres)
    if pg is None:
        pytest.skip("PostgreSQL not reachable: " + "; ".join(errors))
    if (error := in_own_loop(redis_error)) is not None:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {error}")
    schema = new_schema_name()
    asyncio.run(admin(pg, f'CREATE SCHEMA "{schema}"'))
    settings = {"database_url": with_search_path(pg, schema), "redis_url": REDIS_URL, "default_model": "test/echo"}
    try:
        with serve_in_thread(create_app(load_settings(None, **settings)), lifespan="on") as a, \
                serve_in_thread(create_app(load_settings(None, **settings)), lifespan="on") as b:
            yield a, b
    finally:
        asyncio.run(admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))


def test_resume_and_cancel_on_another_replica(two_replicas: tuple[str, str]) -> None:
    a, b = (OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) for url in two_replicas)
    stream = a.responses.create(model="test/echo", input="[[delay:30]] [[long:200]]", background=True, stream=True)
    seen = []
    for ev in stream:
        seen.append(dump(ev))
        if len(seen) == 6:
            break
    stream.close()
    rid, last = seen[0]["response"]["id"], seen[-1]["sequence_number"]
    rest = []
    with b.responses.retrieve(rid, stream=True, starting_after=last) as resumed:
        for ev in resumed:  # live from replica a, through Redis
            rest.append(dump(ev))
            if sum(e["type"] == "response.output_text.delta" for e in rest) == 5:
                cancelled = dump(b.responses.cancel(rid))  # runs on a: cancelled through the store + Redis
                assert cancelled["status"] == "cancelled"
        check_resumed(rest, last)
    assert rest[-1]["type"] == "response.failed" and rest[-1]["response"]["status"] == "cancelled"
    # Replica a stopped the turn: nothing stored after the terminal event (an absence: watched for a while).
    holds_for(nothing_stored_after(a, rid, rest[-1]["sequence_number"]), 0.5)
    assert dump(a.responses.retrieve(rid))["status"] == "cancelled"
