"""A client that hangs up cancels the work done for it, streamed or not.

Starlette notices a disconnect only when it writes (a streamed response) or
when a streaming response listens for it. A non-streamed ``POST
/v1/responses`` writes once, at the end, so a client that gave up still
had its upstream call run to completion (10 s in the probe of issue 15,
forever with an upstream that only sends keep-alives).

``CancelOnDisconnect`` listens for ``http.disconnect`` once the request
body has been read, and cancels the request's task when it arrives before
the response is complete. The engine then ends the turn as it does for a
dropped stream (a stored response is recorded ``failed`` with
``client_disconnected``) and the upstream connection is closed. After the
body, the middleware is the only reader of the connection's messages; the
app's own ``receive()`` calls (Starlette's streaming responses listen too)
get the disconnect from it.

Only requests with a body (POST) are watched: the others finish in
milliseconds and do not deserve a watcher task. Nor do POSTs that finish
within ``WATCH_AFTER_S``: the watcher task starts only then (a timer is
cheaper than a task, and most responses are done by then, issue 16), so a
client that hangs up earlier is noticed at most that much later.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DISCONNECT: Message = {"type": "http.disconnect"}
WATCH_AFTER_S = 0.05


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        body_read = asyncio.Event()
        disconnected = asyncio.Event()
        completed = False
        cancelled_by_us = False

        async def app_receive() -> Message:
            if body_read.is_set():
                await disconnected.wait()
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
            elif message["type"] == "http.request" and not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)

        async def watch() -> None:
            nonlocal cancelled_by_us
            await body_read.wait()
            message = await receive()
            while message["type"] != "http.disconnect":  # nothing else can follow a complete body
                message = await receive()
            disconnected.set()
            if not completed:
                cancelled_by_us = True
                task.cancel()

        watcher: asyncio.Task[None] | None = None

        def start() -> None:
            nonlocal watcher
            watcher = asyncio.create_task(watch())

        timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start)
        try:
            await self.app(scope, app_receive, app_send)
        except asyncio.CancelledError:
            if not cancelled_by_us:
                raise
            task.uncancel()  # the client is gone: nothing to answer, nothing to propagate
        finally:
            timer.cancel()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
