"""Drive the real Codex CLI (``@openai/codex`` from npm) against Responsa.

``install()`` puts a pinned Codex into a cache directory with ``npm`` once
(about 400 MB: a prebuilt binary) and skips the calling test, saying why,
only when npm or its registry is unreachable. ``Codex`` runs ``codex exec``
and ``codex exec resume`` in a private ``CODEX_HOME`` whose config talks to
one model provider only: Responsa, over ``wire_api = "responses"``, with an
API key from an env var (no login), update checks, analytics, telemetry,
plugins and apps off, and every proxy variable pointing at a dead port so
anything but loopback fails instead of reaching the internet.

``RecordingProxy`` sits between Codex and Responsa and keeps every request
body, header and streamed event, so tests assert exactly what Codex sent
(``client_metadata``, ``namespace``/``web_search`` tools, replayed items on
resume) and what it got back.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.agents import npm
from tests.helpers import serve_in_thread

VERSION = "0.171.0"
"""Pinned: Codex changes what it sends between releases."""
Json = dict[str, Any]


def install() -> Path:
    """The ``codex`` binary of the pinned version, installed from npm on first use."""
    prefix = npm.cache_dir("codex", VERSION)
    binary = prefix / "node_modules" / ".bin" / "codex"
    if not binary.exists():
        npm.install(prefix, [f"@openai/codex@{VERSION}"], "the Codex CLI")
        assert binary.exists(), f"npm installed no codex binary under {prefix}"
    return binary


# --- the recording proxy -------------------------------------------------------


@dataclass
class Exchange:
    path: str
    headers: dict[str, str]
    body: Json
    status: int = 0
    events: list[Json] = field(default_factory=list)

    @property
    def terminal(self) -> Json | None:
        return next((e for e in reversed(self.events) if e.get("type") in (
            "response.completed", "response.incomplete", "response.failed")), None)


class RecordingProxy:
    """Forwards ``/v1/*`` to ``upstream`` and records each exchange."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.exchanges: list[Exchange] = []
        self.app = Starlette(routes=[Route("/v1/{path:path}", self._forward, methods=["GET", "POST"])])

    @property
    def responses(self) -> list[Exchange]:
        return [x for x in self.exchanges if x.path == "responses"]

    async def _forward(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        exchange = Exchange(request.path_params["path"], dict(request.headers),
                            json.loads(raw) if raw else {})
        self.exchanges.append(exchange)
        client = httpx.AsyncClient(base_url=self.upstream, timeout=600)
        upstream = await client.send(client.build_request(request.method, request.url.path, content=raw,
                                                          headers=headers, params=request.query_params),
                                     stream=True)
        exchange.status = upstream.status_code

        async def body() -> AsyncIterator[bytes]:
            buffer = b""
            try:
                async for chunk in upstream.aiter_raw():
                    buffer += chunk
                    while b"\n\n" in buffer:
                        block, buffer = buffer.split(b"\n\n", 1)
                        for line in block.split(b"\n"):
                            if line.startswith(b"data: ") and line != b"data: [DONE]":
                                exchange.events.append(json.loads(line[6:]))
                    yield chunk
                if buffer.strip() and not exchange.events:
                    exchange.events.append(json.loads(buffer))  # a plain JSON answer (an error)
            finally:
                await upstream.aclose()
                await client.aclose()

        kept = {k: v for k, v in upstream.headers.items()
                if k.lower() in ("content-type", "x-request-id", "openai-model")}
        return StreamingResponse(body(), status_code=upstream.status_code, headers=kept)


@contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[RecordingProxy, str]]:
    proxy = RecordingProxy(upstream)
    with serve_in_thread(proxy.app) as url:
        yield proxy, url


# --- running codex -----------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    events: list[Json]
    last_message: str

    @property
    def thread_id(self) -> str:
        return next(e["thread_id"] for e in self.events if e.get("type") == "thread.started")

    def items(self, kind: str) -> list[Json]:
        return [e["item"] for e in self.events if e.get("type") == "item.completed" and e["item"]["type"] == kind]

    def explain(self) -> str:
        return f"codex exited {self.returncode}\nstdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"


_DEAD_PROXY = "http://127.0.0.1:9"
"""The discard port: nothing listens, so any non-loopback request fails fast."""


class Codex:
    """One private ``CODEX_HOME`` and work directory, one provider: Responsa."""

    def __init__(self, binary: Path, root: Path, base_url: str, model: str, *,
                 config: str = "", features_off: tuple[str, ...] = (), like: str | None = None) -> None:
        """``like``: describe ``model`` to Codex as this model of its bundled
        catalog (its tools: a freeform ``apply_patch``, ``tool_search``...)
        instead of the fallback metadata an unknown model gets."""
        self.binary = binary
        self.home = root / "codex-home"
        self.workdir = root / "work"
        self.home.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if like is not None:
            config += f'\nmodel_catalog_json = "{self._catalog(model, like)}"'

        off = ("plugins", "apps", "remote_plugin", "tool_suggest", *features_off)
        features = "\n".join(f"{name} = false" for name in dict.fromkeys(off))
        (self.home / "config.toml").write_text(f'''model = "{model}"
model_provider = "responsa"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
{config}

[model_providers.responsa]
name = "Responsa"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "RESPONSA_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[features]
{features}

[analytics]
enabled = false

[otel]
exporter = "none"
''')

    def _catalog(self, model: str, like: str) -> Path:
        proc = subprocess.run([str(self.binary), "debug", "models"], env=self.env(), capture_output=True,
                              text=True, timeout=60, check=True, stdin=subprocess.DEVNULL)
        entry = next(m for m in json.loads(proc.stdout)["models"] if m["slug"] == like)
        path = self.home / "catalog.json"
        path.write_text(json.dumps({"models": [{**entry, "slug": model, "display_name": model}]}))
        return path

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")}
        return {**keep, "HOME": str(self.home.parent), "CODEX_HOME": str(self.home),
                "RESPONSA_API_KEY": "sk-responsa-test", "NO_COLOR": "1",
                "HTTP_PROXY": _DEAD_PROXY, "HTTPS_PROXY": _DEAD_PROXY, "ALL_PROXY": _DEAD_PROXY,
                "http_proxy": _DEAD_PROXY, "https_proxy": _DEAD_PROXY, "all_proxy": _DEAD_PROXY,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def exec(self, prompt: str, *, resume: str | None = None, timeout: float = 300) -> Run:
        last = self.home / "last-message.txt"
        last.unlink(missing_ok=True)
        cmd = [str(self.binary), "exec"]
        if resume is not None:
            cmd += ["resume", "--skip-git-repo-check", "--json", "-o", str(last), resume, prompt]
        else:
            cmd += ["--skip-git-repo-check", "--strict-config", "--json", "-o", str(last), "-C",
                    str(self.workdir), prompt]
        proc = subprocess.run(cmd, cwd=self.workdir, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        events = []
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return Run(proc.returncode, proc.stdout, proc.stderr, events,
                   last.read_text() if last.exists() else "")
