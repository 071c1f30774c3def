"""The SSRF guard, in-process: non-loopback addresses are only ever judged by
the guard functions, never connected to (issue 15, fault 12)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx2
import pytest

from responsa.protocol.errors import APIError
from responsa.tools.mcp import urlguard
from tests.helpers import serve_in_thread

REFUSED = [
    "100.64.0.1", "100.100.100.200", "100.127.255.254",    # shared address space (cloud metadata 100.100.100.200)
    "2002:c0a8:101::1", "2002:a00:1::1", "2002:7f00:1::1",  # 6to4 forms of 192.168.1.1, 10.0.0.1, 127.0.0.1
    "2002:808:808::1",                                       # 6to4 even of a public address: denied wholesale
    "fec0::1", "fed0::5",                                    # deprecated site-local
    "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe",                  # NAT64 of 10.0.0.1, 169.254.169.254
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",                  # Teredo
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "0.0.0.0", "::", "::1",
    "fe80::1", "fd00::1", "fc00::1", "224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1", "240.0.0.1",
    "255.255.255.255", "192.0.0.170", "198.18.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not urlguard.public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert urlguard.public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["100.100.100.200", "[2002:c0a8:101::1]", "[fec0::1]", "[::ffff:a00:1]"])
async def test_check_url_refuses_the_forms_that_used_to_pass(address: str) -> None:
    with pytest.raises(APIError) as info:
        await urlguard.check_url(f"http://{address}/mcp", [], "tools[0].server_url")
    assert info.value.status == 400 and info.value.code == "mcp_server_url_refused"
    assert info.value.param == "tools[0].server_url"


async def test_allow_list_by_network_and_by_name() -> None:
    await urlguard.check_url("http://10.1.2.3/mcp", ["10.0.0.0/8"], "p")
    await urlguard.check_url("http://mcp.internal/mcp", ["mcp.internal"], "p")
    with pytest.raises(APIError):
        await urlguard.check_url("http://10.1.2.3/mcp", ["192.168.0.0/16"], "p")


class _Resolver:
    """Scripted DNS: each lookup of a name returns the next answer (a rebinding attacker)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[urlguard.IPAddress]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [ipaddress.ip_address(a) for a in answer]


async def test_unresolvable_name_passes_validation_but_the_connection_is_guarded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that did not resolve at validation (or rebinds to a private
    address afterwards) is judged again when the connection resolves it; the
    socket is never opened to a refused address."""
    async def no_dns(host: str, port: int) -> list[urlguard.IPAddress]:
        raise OSError("no such host")

    monkeypatch.setattr(urlguard, "resolve", no_dns)
    await urlguard.check_url("http://rebind.example/mcp", [], "p")  # passes: nothing to judge yet
    monkeypatch.setattr(urlguard, "resolve", _Resolver([["10.0.0.7"]]))
    backend = urlguard.GuardedBackend([])
    opened: list[str] = []

    async def never(host: str, port: int, **kw: object) -> object:
        opened.append(host)
        raise AssertionError("connected to a refused address")

    monkeypatch.setattr(backend._inner, "connect_tcp", never)
    with pytest.raises(urlguard.RefusedAddress, match=r"10\.0\.0\.7"):
        await backend.connect_tcp("rebind.example", 80, timeout=1)
    assert opened == []


async def test_rebinding_between_check_and_connect_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = _Resolver([["93.184.215.14"], ["169.254.169.254"]])
    monkeypatch.setattr(urlguard, "resolve", resolver)
    await urlguard.check_url("http://rebind.example/mcp", [], "p")
    client = httpx2.AsyncClient(transport=urlguard.guarded_transport([]))
    async with client:
        with pytest.raises(httpx2.ConnectError, match="non-public"):
            await client.get("http://rebind.example/mcp")
    assert resolver.calls == 2


async def test_mixed_answer_with_one_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urlguard, "resolve", _Resolver([["93.184.215.14", "10.0.0.1"]]))
    with pytest.raises(APIError):
        await urlguard.check_url("http://mixed.example/mcp", [], "p")
    with pytest.raises(urlguard.RefusedAddress):
        await urlguard.GuardedBackend([]).connect_tcp("mixed.example", 80, timeout=1)


@pytest.fixture(scope="module")
def loopback_http() -> Iterator[str]:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] in ("http", "lifespan")
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"pinned"})

    with serve_in_thread(app) as url:
        yield url


async def test_connection_goes_to_the_address_that_was_judged(monkeypatch: pytest.MonkeyPatch,
                                                              loopback_http: str) -> None:
    """``mcp.example`` does not exist in real DNS: the request reaching the
    loopback server proves the socket went to the guard's own answer."""
    port = int(loopback_http.rsplit(":", 1)[1])
    monkeypatch.setattr(urlguard, "resolve", _Resolver([["127.0.0.1"]]))
    async with httpx2.AsyncClient(transport=urlguard.guarded_transport(["127.0.0.0/8"])) as client:
        r = await client.get(f"http://mcp.example:{port}/")
    assert r.status_code == 200 and r.text == "pinned"
    async with httpx2.AsyncClient(transport=urlguard.guarded_transport([])) as client:
        with pytest.raises(httpx2.ConnectError, match="non-public"):
            await client.get(f"http://mcp.example:{port}/")
