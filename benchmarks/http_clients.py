"""Which async HTTP client should carry Responsa's upstream calls?

Every candidate makes the same calls to the same 0 ms upstream: a POST of a
Chat Completions request, answered either as one JSON body ("json") or as
the SSE stream our providers always ask for ("stream", each event its own
chunk, read as it arrives). Each client runs in its own process, so one
client's threads or caches cannot slow another; the upstream is a canned
server in a third process (raw ``asyncio`` + ``httptools``, ~10 us a
request) replaying the bytes the real fake (``tests/fakes/openai_chat.py``)
sends, so it is never what limits the rate.

Per client and shape it reports:

- ``cpu_us``: process CPU time (user+sys, all threads) per request at
  concurrency 1;
- ``instructions``: with ``--callgrind``, instructions per request counted by
  valgrind over the same loop (the number that does not move with the
  machine's load: decide by this one);
- ``rps``: requests per second at ``--concurrency`` (default 32).

    python benchmarks/http_clients.py [--requests 2000] [--callgrind] [--clients aiohttp pyreqwest ...]

Prints JSON. Clients not installed are reported as such (the candidates are
not dependencies: ``pip install pyreqwest aiosonic curl-cffi httpr`` to
compare). ``minimal`` is a ~100-line HTTP/1.1 client on ``httptools`` (the
floor a Python client can reach: no timeouts, no pool limit), kept as the
yardstick; ``responsa-http1`` is the client the providers use
(``responsa.providers.http1``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Tell me about the weather in Paris today"}],
        "stream": True, "stream_options": {"include_usage": True}}
HEADERS = {"content-type": "application/json", "accept": "text/event-stream", "authorization": "Bearer sk-bench"}

# -- the canned upstream ----------------------------------------------------------


def _capture() -> tuple[list[bytes], bytes]:
    """The real fake's SSE events and JSON body for ``BODY``."""
    import httpx

    sys.path.insert(0, str(ROOT))
    from benchmarks.overhead import free_port, wait_up

    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/fakes/openai_chat.py"), "--port", str(port)],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/v1/models", proc)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        streamed = httpx.post(url, json=BODY).content
        whole = httpx.post(url, json={**BODY, "stream": False}).content
    finally:
        proc.terminate()
        proc.wait(10)
    events = [e + b"\n\n" for e in streamed.split(b"\n\n") if e.strip()]
    return events, whole


def _serve(port: int, events: list[bytes], whole: bytes) -> None:
    import httptools
    import uvloop

    head = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\n%s\r\n"
    stream_parts = [head % (b"text/event-stream", b"transfer-encoding: chunked\r\n")]
    stream_parts += [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
    json_reply = head % (b"application/json", b"content-length: %d\r\n" % len(whole)) + whole

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.parser = httptools.HttpRequestParser(self)
            self.body = bytearray()

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            streamed = b'"stream":true' in self.body
            self.body.clear()
            if streamed:  # one write (one TCP segment) per event, as a token-by-token upstream sends them
                for part in stream_parts:
                    self.transport.write(part)
            else:
                self.transport.write(json_reply)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Canned, "127.0.0.1", port, backlog=1024)
        print("listening", flush=True)
        await server.serve_forever()

    uvloop.run(main())


# -- the candidates -----------------------------------------------------------------
# Each is (json_call, stream_call, close): json_call returns the body, stream_call the
# number of chunks read as they arrived.

Calls = tuple[Callable[[], Awaitable[bytes]], Callable[[], Awaitable[int]], Callable[[], Awaitable[None]]]


def _aiohttp(url: str, content: bytes, json_content: bytes, tuned: bool) -> Calls:
    import aiohttp
    import yarl

    if not tuned:  # what providers/_http.py does today
        session = aiohttp.ClientSession(
            headers=HEADERS, timeout=aiohttp.ClientTimeout(total=None, sock_read=300, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=512, ttl_dns_cache=60))
        target: Any = url
    else:  # no cookie jar, no decompression, no per-read timer, URL parsed once
        session = aiohttp.ClientSession(
            headers=HEADERS, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=512, ttl_dns_cache=60), cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))
        target = yarl.URL(url)

    async def whole() -> bytes:
        async with session.post(target, data=json_content) as resp:
            return await resp.read()

    async def stream() -> int:
        n = 0
        async with session.post(target, data=content) as resp:
            async for _ in resp.content.iter_any():
                n += 1
        return n

    return whole, stream, session.close


def _pyreqwest(url: str, content: bytes, json_content: bytes) -> Calls:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder

    client = (ClientBuilder().default_headers(HEADERS).connect_timeout(timedelta(seconds=10))
              .read_timeout(timedelta(seconds=300)).max_connections(512).build())

    async def whole() -> bytes:
        resp = await client.post(url).body_bytes(json_content).build().send()
        return bytes(await resp.bytes())

    async def stream() -> int:
        n = 0
        async with client.post(url).body_bytes(content).build_streamed() as resp:
            reader = resp.body_reader
            while await reader.read_chunk() is not None:
                n += 1
        return n

    return whole, stream, client.close


def _httpr(url: str, content: bytes, json_content: bytes) -> Calls:
    import httpr

    client = httpr.AsyncClient(headers=HEADERS, timeout=300, cookie_store=False, follow_redirects=False)

    async def whole() -> bytes:
        resp = await client.post(url, content=json_content)
        return bytes(resp.content)

    async def stream() -> int:
        n = 0
        async with client.stream("POST", url, content=content) as resp:
            async for _ in resp.aiter_bytes():
                n += 1
        return n

    return whole, stream, client.aclose


def _aiosonic(url: str, content: bytes, json_content: bytes) -> Calls:
    import aiosonic
    from aiosonic.connectors import TCPConnector
    from aiosonic.pools import PoolConfig
    from aiosonic.timeout import Timeouts

    client = aiosonic.HTTPClient(connector=TCPConnector(pool_configs={":default": PoolConfig(size=512,
                                                                                          max_conn_requests=None)}))
    timeouts = Timeouts(sock_connect=10, sock_read=300, request_timeout=None)

    async def whole() -> bytes:
        resp = await client.post(url, data=json_content, headers=HEADERS, timeouts=timeouts)
        return bytes(await resp.content())

    async def stream() -> int:
        n = 0
        resp = await client.post(url, data=content, headers=HEADERS, timeouts=timeouts)
        async for _ in resp.read_chunks():
            n += 1
        return n

    async def close() -> None:
        await client.connector.cleanup()

    return whole, stream, close


def _curl_cffi(url: str, content: bytes, json_content: bytes) -> Calls:
    from curl_cffi.requests import AsyncSession

    session = AsyncSession(headers=HEADERS, max_clients=512, timeout=(10, 300))

    async def whole() -> bytes:
        resp = await session.post(url, data=json_content)
        return bytes(resp.content)

    async def stream() -> int:
        n = 0
        resp = await session.post(url, data=content, stream=True)
        try:
            async for _ in resp.aiter_content():
                n += 1
        finally:
            await resp.aclose()
        return n

    return whole, stream, session.close


class _MinimalConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: httptools parses, chunks queue up
    for the reader; no timeouts, no retries, no TLS (the yardstick only)."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []
        self.done = False
        self.waiter: asyncio.Future[None] | None = None
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def request(self, head: bytes, body: bytes) -> AsyncIterator[bytes]:
        self.done = False
        self.transport.write(head + b"content-length: %d\r\n\r\n" % len(body) + body)
        loop = asyncio.get_running_loop()
        while True:
            if self.chunks:
                chunks, self.chunks = self.chunks, []
                for c in chunks:
                    yield c
            if self.done:
                return
            self.waiter = loop.create_future()
            await self.waiter


def _minimal(url: str, content: bytes, json_content: bytes) -> Calls:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())).encode()
    idle: list[_MinimalConnection] = []

    async def connection() -> _MinimalConnection:
        if idle:
            return idle.pop()
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_MinimalConnection, parts.hostname, parts.port)
        return conn

    async def whole() -> bytes:
        conn = await connection()
        out = b"".join([c async for c in conn.request(head, json_content)])
        idle.append(conn)
        return out

    async def stream() -> int:
        conn = await connection()
        n = 0
        async for _ in conn.request(head, content):
            n += 1
        idle.append(conn)
        return n

    async def close() -> None:
        for conn in idle:
            conn.transport.close()

    return whole, stream, close


def _responsa(url: str, content: bytes, json_content: bytes) -> Calls:
    """What the providers use (``responsa.providers.http1``), with their settings."""
    from responsa.providers import http1

    client = http1.Client(headers={"authorization": HEADERS["authorization"]}, max_connections=512,
                          connect_timeout=10, read_timeout=300)
    extra = http1.header_block({"content-type": HEADERS["content-type"], "accept": HEADERS["accept"]})

    async def whole() -> bytes:
        async with client.request("POST", url, json_content, extra) as resp:
            return await resp.read()

    async def stream() -> int:
        n = 0
        async with client.request("POST", url, content, extra) as resp:
            async for _ in resp.chunks():
                n += 1
        return n

    return whole, stream, client.aclose


CLIENTS: dict[str, Callable[[str, bytes, bytes], Calls]] = {
    "aiohttp": lambda u, c, j: _aiohttp(u, c, j, tuned=False),
    "aiohttp-tuned": lambda u, c, j: _aiohttp(u, c, j, tuned=True),
    "pyreqwest": _pyreqwest,
    "httpr": _httpr,
    "aiosonic": _aiosonic,
    "curl-cffi": _curl_cffi,
    "minimal": _minimal,
    "responsa-http1": _responsa,
}

# -- one client in its own process ----------------------------------------------------


def _worker(client: str, url: str, requests: int, concurrency: int) -> None:
    """Steps, each announced on stdout and started by a line on stdin (so a
    parent can switch callgrind's counting on around exactly that step)."""
    import orjson
    import uvloop

    content = orjson.dumps(BODY)
    json_content = orjson.dumps({**BODY, "stream": False})

    async def main() -> None:
        whole, stream, close = CLIENTS[client](url, content, json_content)
        loop = asyncio.get_running_loop()
        assert len(await whole()) > 100 and await stream() >= 1
        for _ in range(50):
            await whole()
            await stream()
        out: dict[str, Any] = {}
        for shape, call in (("json", whole), ("stream", stream)):
            print(f"ready {shape}", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(requests):
                await call()
            out[shape] = {"cpu_us": round((time.process_time() - cpu) / requests * 1e6, 1),
                          "c1_rps": round(requests / (time.perf_counter() - wall))}
            print(f"done {shape}", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            queue = iter(range(requests * 2))

            async def lane(call: Callable[[], Awaitable[Any]] = call, queue: Any = queue) -> None:
                for _ in queue:
                    await call()

            wall = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(concurrency)))
            out[shape]["rps"] = round(requests * 2 / (time.perf_counter() - wall))
        await close()
        print("result " + json.dumps(out), flush=True)

    uvloop.run(main())


def _run_client(client: str, url: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", client, "--url", url, "--requests", str(args.requests),
           "--concurrency", str(args.concurrency)]
    out = Path(tmp) / f"cg.{client}"
    if args.callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    counted: dict[str, int] = {}
    try:
        while line := proc.stdout.readline():
            word, _, rest = line.strip().partition(" ")
            if word == "ready" and args.callgrind:
                subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            elif word == "done" and args.callgrind:
                before = set(Path(tmp).glob(f"cg.{client}.*"))
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
                subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
                (dump,) = set(Path(tmp).glob(f"cg.{client}.*")) - before
                counted[rest] = _total(dump) // args.requests
                dump.unlink()
            elif word == "result":
                result: dict[str, Any] = json.loads(rest)
                for shape, n in counted.items():
                    result[shape]["instructions"] = n
                return result
            if word in ("ready", "done"):
                proc.stdin.write("go\n")
                proc.stdin.flush()
        raise RuntimeError(proc.stderr.read()[-2000:])
    finally:
        proc.kill()
        proc.wait()


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS))
    parser.add_argument("--callgrind", action="store_true", help="count instructions (slow: valgrind)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.url, args.requests, args.concurrency)
        return
    if args.serve:
        events, whole = json.loads(sys.stdin.readline())
        _serve(args.serve, [e.encode() for e in events], whole.encode())
        return
    from benchmarks.overhead import free_port

    events, whole = _capture()
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps([[e.decode() for e in events], whole.decode()]) + "\n")
    server.stdin.flush()
    server.stdout.readline()
    results: dict[str, Any] = {"requests": args.requests, "concurrency": args.concurrency,
                               "events_per_stream": len(events), "clients": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for client in args.clients:
                try:
                    results["clients"][client] = _run_client(
                        client, f"http://127.0.0.1:{port}/v1/chat/completions", args, tmp)
                except RuntimeError as exc:
                    lines = [line for line in str(exc).splitlines() if "Error" in line or "error" in line]
                    results["clients"][client] = {"error": (lines or str(exc).splitlines())[-1:]}
                print(client, json.dumps(results["clients"][client]), file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
