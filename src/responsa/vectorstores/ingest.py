"""Ingesting files into vector stores in the background, surviving restarts.

The ``vector_store_files`` row is the job, held through the lease pattern
of background responses (``engine/background.py``): the replica that
accepted a file holds its lease and renews every lease it holds with one
statement every third of ``lease_s``; a sweeper on every replica takes over
jobs whose lease ran out (their replica died or was restarted). Ingesting
is idempotent (chunk, embed, then insert the chunks and mark the file
completed in one conditional transaction), so a job taken over runs again
from the start, up to ``MAX_ATTEMPTS`` times; after that it is ``failed``
with ``server_error``. Nothing stays ``in_progress`` once no replica holds
it. A cancelled batch's files are ``cancelled`` in the database; their
runners' final write then finds the job gone and stores nothing.

The same sweep deletes vector stores whose ``expires_after`` ran out (their
chunks, files' links and batches; the uploaded files stay, as on OpenAI):
every replica may do it, and a delete that lost the race finds nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from responsa.protocol.errors import ResponsaError
from responsa.store.vectors import VectorStoreDB
from responsa.supervise import Supervisor

log = logging.getLogger("responsa.vectorstores")

MAX_ATTEMPTS = 3
SWEEP_LIMIT = 100

Job = tuple[str, str, str]
"""``(tenant, vector_store_id, file_id)``."""
Work = Callable[[Job, str], Awaitable[None]]
"""Run one job held by ``owner`` to its end (``VectorStores._ingest``)."""


def last_error(exc: BaseException) -> dict[str, str]:
    """A failed file's ``last_error``: OpenAI's codes are ``server_error``,
    ``unsupported_file`` and ``invalid_file``."""
    if isinstance(exc, ResponsaError):
        if exc.code == "unsupported_file":
            return {"code": "unsupported_file", "message": exc.message}
        if exc.status < 500:
            return {"code": "invalid_file", "message": exc.message}
        return {"code": "server_error", "message": exc.message}
    return {"code": "server_error", "message": "The server had an error while processing the file."}


class Ingestor:
    def __init__(self, db: VectorStoreDB, work: Work, *, lease_s: float, concurrency: int) -> None:
        self.db = db
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = lease_s
        self._work = work
        self._slots = asyncio.Semaphore(concurrency)
        self._jobs: dict[Job, asyncio.Task[None]] = {}
        self._done: dict[Job, asyncio.Event] = {}
        self.supervisor = Supervisor()

    def lease(self) -> tuple[str, float]:
        return self.owner, time.time() + self.lease_s

    async def start(self) -> None:
        self.supervisor.spawn("vector-store-leases", self._renew_forever)
        self.supervisor.spawn("vector-store-sweeper", self._sweep_forever)

    async def stop(self) -> None:
        """Stop running jobs and release their leases, so any replica (or
        this one restarted) takes them over at its next sweep."""
        await self.supervisor.stop()
        tasks = list(self._jobs.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await self.db.renew_leases(self.owner, 0.0)

    def submit(self, jobs: list[Job]) -> None:
        """Run jobs this replica holds the lease of."""
        for job in jobs:
            if job in self._jobs:
                continue
            task = asyncio.create_task(self._run(job), name=f"ingest-{job[2]}")
            self._jobs[job] = task
            task.add_done_callback(functools.partial(self._finished, job))

    def _finished(self, job: Job, _: asyncio.Task[None]) -> None:
        self._jobs.pop(job, None)
        event = self._done.pop(job, None)
        if event is not None:
            event.set()

    async def wait(self, job: Job) -> None:
        """Until this replica is no longer running ``job`` (benchmarks, tests)."""
        if job in self._jobs:
            event = self._done.setdefault(job, asyncio.Event())
            await event.wait()

    async def _run(self, job: Job) -> None:
        async with self._slots:
            try:
                await self._work(job, self.owner)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("vector store file %s failed: %s", job[2], exc, exc_info=not isinstance(
                    exc, ResponsaError))
                try:
                    await self.db.fail_file(*job, self.owner, last_error(exc))
                except Exception:
                    log.warning("could not record the failure of %s; the sweeper will", job[2], exc_info=True)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if self._jobs:
                try:
                    await self.db.renew_leases(self.owner, time.time() + self.lease_s)
                except Exception:
                    log.warning("could not renew vector store leases", exc_info=True)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.warning("vector store sweep failed", exc_info=True)
            await asyncio.sleep(self.lease_s / 2)

    async def sweep(self, now: float | None = None) -> None:
        """Delete expired vector stores, then take over every job whose
        replica stopped renewing its lease (``now``: tests sweep the future)."""
        now = time.time() if now is None else now
        for tenant, vid in await self.db.expired_stores(int(now), SWEEP_LIMIT):
            if await self.db.delete_store(tenant, vid, expired_by=int(now)):
                log.info("deleted vector store %s: it expired (expires_after)", vid)
        for tenant, vid, fid, attempts in await self.db.expired_jobs(now, SWEEP_LIMIT):
            job = (tenant, vid, fid)
            if job in self._jobs:
                continue
            if attempts + 1 >= MAX_ATTEMPTS:
                log.warning("vector store file %s lost its worker %d times; marking it failed", fid, attempts + 1)
                await self.db.fail_file(tenant, vid, fid, None, {
                    "code": "server_error",
                    "message": "The server processing this file stopped (restarted or crashed) too many times."})
                continue
            if await self.db.claim_job(tenant, vid, fid, self.owner, now, now + self.lease_s):
                log.info("taking over the ingestion of %s into %s", fid, vid)
                self.submit([job])
