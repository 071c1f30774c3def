"""Background responses (``background: true``): run detached from the
request that created them, survive its client, and can be polled,
cancelled and followed (resumed) from any replica.

The response row is the job. ``submit`` inserts it ``queued`` with a lease
held by this replica (``owner``); one statement per replica renews all its
leases every third of the lease; a sweeper on every replica takes over jobs
whose lease ran out: still ``queued`` (nothing emitted) → claimed and run
again; ``in_progress`` → ``failed`` with ``worker_lost``. Nothing is left
``in_progress`` forever.

A running job is two tasks. The producer runs the turn into a buffer and
never waits on the store. The writer flushes the buffer every ``FLUSH_S``
or ``FLUSH_EVENTS`` events (one transaction per batch, not per delta) and
only *then* publishes the batch to followers, so any event a client has
seen is durable and a resumed stream can never disagree with the live one.
Every write is conditional on still holding the job, so a runner whose job
was cancelled or swept elsewhere stops instead of overwriting the outcome.

Cancelling ends the stream with ``response.failed`` carrying a response
whose status is ``cancelled`` (and ``error: null``): the spec and OpenAI's
SDK have no ``response.cancelled`` event, and every client and fan-out
already treats ``response.failed`` as terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from responsa.engine.context import Prepared
from responsa.engine.events import EventBuilder
from responsa.engine.loop import run
from responsa.engine.runner import conversation_items
from responsa.fanout import Fanout
from responsa.jobsecrets import needs_secrets
from responsa.protocol.errors import ResponsaError, ServerError
from responsa.protocol.events import TERMINAL
from responsa.protocol.types import Event
from responsa.store.base import Store
from responsa.supervise import Supervisor
from responsa.tools.registry import ITEM_KINDS

log = logging.getLogger("responsa.background")

FLUSH_S = 0.05
FLUSH_EVENTS = 64
POLL_S = 1.0
"""A follower re-reads the store when the live tail is silent this long
(it also ends a follower whose job was closed by another replica)."""
SWEEP_LIMIT = 100
STOP_WAIT_S = 5.0
FINISHED = frozenset({"completed", "failed", "incomplete", "cancelled"})


def _lost() -> ResponsaError:
    return ServerError("The server running this response stopped (it was restarted or crashed) while the "
                       "response was in progress.", code="worker_lost")


def _crashed() -> ResponsaError:
    return ServerError()


def _shutdown() -> ResponsaError:
    return ServerError("The server shut down while the response was in progress.", code="server_shutdown")


Reprepare = Callable[[str, dict[str, Any]], Awaitable[Prepared]]
"""Rebuild a turn from a stored request (``tenant``, request JSON)."""


def _ending(response: dict[str, Any], error: ResponsaError | None) -> list[Event]:
    """Terminal events for a job stopped from outside any runner of it (a
    stored response): cancelled (``error`` None) or failed with ``error``."""
    return EventBuilder(response, kinds=ITEM_KINDS).stop(error)


@dataclass(slots=True, eq=False)
class _Job:
    tenant: str
    prep: Prepared
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    buffer: list[Event] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    producer: asyncio.Task[None] | None = None
    halted: bool = False
    """The runner stopped the turn: cancelled if ``error`` is None."""
    error: ResponsaError | None = None

    @property
    def id(self) -> str:
        rid: str = self.prep.turn.response["id"]
        return rid


class BackgroundRunner:
    def __init__(self, store: Store, fanout: Fanout, reprepare: Reprepare, *, lease_s: float,
                 concurrency: int) -> None:
        self.store = store
        self.fanout = fanout
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = lease_s
        self._reprepare = reprepare
        self._slots = asyncio.Semaphore(concurrency)
        self._jobs: dict[str, _Job] = {}
        self.supervisor = Supervisor()
        """Runs the lease renewal and the sweeper: restarted if they fail, visible in ``/health``."""
        self._foreground: set[str] = set()
        """Stored foreground responses running here: leased like jobs (``lease``)."""
        self._unfinished: dict[str, tuple[str, dict[str, Any], list[Any] | None]] = {}
        """Foreground responses whose final write failed (database outage): retried until it lands."""

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        self.supervisor.spawn("background-leases", self._renew_forever)
        self.supervisor.spawn("background-sweeper", self._sweep_forever)
        self.supervisor.spawn("foreground-finisher", self._finish_forever)

    # -- foreground leases ---------------------------------------------------
    # A stored foreground response (a stream, an idempotency key) is leased
    # like a job while it runs here, so if this server dies (kill -9, OOM) or
    # cannot write its ending (database outage), the sweeper of any replica,
    # or of this one restarted, marks it failed ("worker_lost") once the
    # lease runs out: every stored response reaches a terminal status within
    # ``lease_s`` (plus a sweep interval) of its server's death (issue 15,
    # fault 1). Its lease is renewed with the jobs' (one statement).

    def lease(self, response_id: str) -> tuple[str, float]:
        """The lease to store a foreground response with; held until ``release``."""
        self._foreground.add(response_id)
        return self.owner, time.time() + self.lease_s

    def release(self, response_id: str) -> None:
        self._foreground.discard(response_id)

    def finish_later(self, tenant: str, response: dict[str, Any], appended: list[Any] | None) -> None:
        """The final write of a foreground response failed: keep trying (its lease keeps it ours)."""
        self._unfinished[response["id"]] = (tenant, response, appended)

    async def _finish_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for rid, (tenant, response, appended) in list(self._unfinished.items()):
                try:
                    await self.store.finish_response(tenant, response, appended)
                except Exception:
                    log.warning("response %s: its final state is not stored yet; retrying", rid)
                    break  # the store is still down: try again next round
                self._unfinished.pop(rid, None)

    async def stop(self) -> None:
        """Fail what is running here (it cannot be resumed elsewhere) and
        release what is still queued so any replica runs it at once."""
        await self.supervisor.stop()
        jobs = list(self._jobs.values())
        for job in jobs:
            self._halt(job, _shutdown())
        tasks = {job.task for job in jobs if job.task is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_WAIT_S)
        await self.store.renew_leases(self.owner, 0.0)

    # -- submit, cancel, follow ---------------------------------------------

    async def submit(self, tenant: str, prep: Prepared, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Store the job ``queued`` and start it; the response as it is now.
        Raises ``IdempotencyConflict`` like ``Store.create_response``."""
        turn = prep.turn
        turn.queued = True
        turn.response["status"] = "queued"
        await self.store.create_response(tenant, turn.response, prep.request_json, turn.input_items,
                                         idempotency_key=idempotency_key,
                                         lease=(self.owner, time.time() + self.lease_s))
        queued = {**turn.response, "output": []}
        self._start(tenant, prep)
        return queued

    async def cancel(self, tenant: str, found: dict[str, Any]) -> dict[str, Any]:
        """Cancel the background response ``found``; unchanged if it already finished."""
        rid = found["id"]
        if found["status"] in FINISHED:
            return found
        job = self._jobs.get(rid)
        if job is not None and job.producer is not None:
            # Running here: its writer ends the stream itself, in sequence.
            self._halt(job, None)
            if job.task is not None:
                await asyncio.wait({job.task}, timeout=STOP_WAIT_S)
        else:
            if job is not None:
                job.halted = True  # waiting for a slot: it will not start
            await self._close(tenant, {**found, "status": "cancelled"}, None, math.inf)
            await self.fanout.cancel(rid)  # the replica running it, if any, stops its turn
        return await self.store.get_response(tenant, rid) or found

    async def follow(self, tenant: str, response_id: str, after: int) -> AsyncIterator[Event]:
        """The stored events after ``after``, then the live ones, up to the
        terminal event. Subscribes before reading the store, so nothing
        falls between backlog and live tail; re-reads the store whenever
        the live tail lags, skips or goes quiet."""
        last = after
        stalled_at: int | None = None
        while True:
            try:
                async with self.fanout.subscribe(response_id) as live:
                    events = aiter(live)
                    while True:
                        backlog, finished = await self._catch_up(tenant, response_id, last)
                        for ev in backlog:
                            last = ev["sequence_number"]
                            yield ev
                            if ev["type"] in TERMINAL:
                                return
                        if finished:
                            return
                        while True:
                            try:
                                ev = await asyncio.wait_for(anext(events), POLL_S)
                            except TimeoutError:
                                break
                            seq = ev["sequence_number"]
                            if seq <= last:
                                continue
                            if seq != last + 1:
                                break
                            last = seq
                            yield ev
                            if ev["type"] in TERMINAL:
                                return
            except Exception:
                # The live tail broke (lagged, Redis hiccup): the store has
                # everything, so catch up from it, unless nothing moved since
                # the last failure (then the failure is ours to report).
                if stalled_at == last:
                    raise
                stalled_at = last
                log.info("follower of %s resyncing from the store after %d", response_id, last, exc_info=True)

    async def _catch_up(self, tenant: str, response_id: str, after: int) -> tuple[list[Event], bool]:
        """Stored events after ``after``, and whether there will be no more."""
        backlog = await self.store.get_events(tenant, response_id, after)
        if backlog:
            return backlog, False
        found = await self.store.get_response(tenant, response_id)
        if found is None:
            return [], True
        if found["status"] in FINISHED:
            # The job may have finished since the first read; its last events
            # were committed with its status, so this read has them all.
            return await self.store.get_events(tenant, response_id, after), True
        return [], False

    # -- running a job ------------------------------------------------------

    def _start(self, tenant: str, prep: Prepared) -> None:
        job = _Job(tenant, prep)
        rid = job.id
        self._jobs[rid] = job
        job.task = asyncio.create_task(self._run(job), name=f"background-{rid}")
        job.task.add_done_callback(lambda _: self._jobs.pop(rid, None))

    def _halt(self, job: _Job, why: ResponsaError | None) -> None:
        if not job.halted:
            job.halted, job.error = True, why
        if job.producer is not None:
            job.producer.cancel()
        elif job.task is not None:
            job.task.cancel()

    async def _run(self, job: _Job) -> None:
        try:
            async with self._slots:
                if job.halted:
                    return
                async with self.fanout.watch_cancel(job.id) as cancelled:
                    job.producer = asyncio.create_task(self._produce(job))
                    watcher = asyncio.create_task(cancelled.wait())
                    watcher.add_done_callback(lambda w: None if w.cancelled() else self._halt(job, None))
                    try:
                        await self._write(job)
                    finally:
                        watcher.cancel()
                        job.producer.cancel()
        except asyncio.CancelledError:
            pass  # stopped before it started: its lease is released on shutdown
        except Exception:
            log.exception("background response %s: the store failed; the sweeper will close it", job.id)

    async def _produce(self, job: _Job) -> None:
        try:
            async for ev in run(job.prep.turn):
                job.buffer.append(ev)
                if len(job.buffer) >= FLUSH_EVENTS or ev["type"] in TERMINAL:
                    job.wake.set()
        finally:
            job.wake.set()

    async def _write(self, job: _Job) -> None:
        assert job.producer is not None
        turn = job.prep.turn
        started = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.wake.wait(), FLUSH_S)
            job.wake.clear()
            stopped = job.producer.done()  # before taking the buffer: nothing can follow what we take
            batch, job.buffer = job.buffer, []
            ended = bool(batch) and batch[-1]["type"] in TERMINAL
            if stopped and not ended:
                batch += turn.builder.stop(job.error if job.halted else _crashed())
                ended = True
            if not batch:
                continue
            if ended:
                final = batch[-1]["response"]
                ok = await self.store.finish_response(job.tenant, final,
                                                      conversation_items(turn.input_items, final),
                                                      owner=self.owner, events=batch)
            else:
                snapshot = None if started else {**turn.response, "status": "in_progress", "output": []}
                ok = await self.store.append_events(job.tenant, job.id, self.owner, batch, response=snapshot)
                started = True
            if not ok:  # cancelled or swept elsewhere: the outcome is already stored
                job.producer.cancel()
                return
            for ev in batch:
                self.fanout.publish(job.id, ev)
            if ended:
                return

    # -- leases and the sweeper --------------------------------------------

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if self._jobs or self._foreground or self._unfinished:
                try:
                    await self.store.renew_leases(self.owner, time.time() + self.lease_s)
                except Exception:
                    log.warning("could not renew background leases", exc_info=True)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.warning("background sweep failed", exc_info=True)
            await asyncio.sleep(self.lease_s / 2)

    async def sweep(self) -> None:
        """Take over every job whose replica stopped renewing its lease."""
        now = time.time()
        for tenant, rid, status in await self.store.expired_jobs(now, SWEEP_LIMIT):
            if rid in self._jobs or rid in self._foreground or rid in self._unfinished:
                continue
            if status == "queued":
                if await self.store.claim_job(tenant, rid, self.owner, now, now + self.lease_s):
                    await self._rerun(tenant, rid)
                continue
            found = await self.store.get_response(tenant, rid)
            if found is not None:
                log.warning("background response %s lost its worker; marking it failed", rid)
                await self._close(tenant, found, _lost(), now)

    async def _rerun(self, tenant: str, rid: str) -> None:
        """Run a job nobody started, from its stored (secret-free) request."""
        request = await self.store.get_request(tenant, rid)
        stored = await self.store.get_response(tenant, rid)
        if request is None or stored is None:
            return
        if needs_secrets(request):
            # Its MCP headers/credentials were never stored: re-running it
            # would send the server "[redacted]" or nothing (issue 15, fault 10).
            await self._close(tenant, stored, ResponsaError(
                "This background response was queued with MCP credentials, which are never stored; the server "
                "that accepted it stopped before running it, so it cannot be run elsewhere. Create it again.",
                status=500, code="secrets_unavailable"), math.inf)
            return
        try:
            prep = await self._reprepare(tenant, request)
        except ResponsaError as exc:
            await self._close(tenant, stored, exc, math.inf)
            return
        prep.turn.response.update(stored)
        prep.turn.queued = True
        log.info("re-running queued background response %s", rid)
        self._start(tenant, prep)

    async def _close(self, tenant: str, response: dict[str, Any], error: ResponsaError | None,
                     expired_before: float) -> None:
        """End a job from outside its runner and tell its followers."""
        stored = await self.store.close_job(tenant, response, _ending(response, error),
                                            expired_before=expired_before)
        for ev in stored or ():
            self.fanout.publish(response["id"], ev)
