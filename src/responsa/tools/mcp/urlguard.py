"""Refuse request-supplied MCP server URLs that point into the server's own
network (SSRF), unless the operator allow-listed the host or its network.

An address is acceptable only if ``ip.is_global`` says so AND it is in none
of the ranges of ``DENY`` (ranges ``is_global`` still calls global in some
Python versions but that reach private hosts: 6to4 and NAT64 wrappers of
IPv4 addresses, deprecated site-local IPv6, multicast, the shared address
space 100.64.0.0/10 that hosts cloud metadata services). A check by
"global" plus a deny list fails closed for ranges nobody listed; the former
list of ``is_private``/``is_loopback``/... checks failed open.

Two checks, one rule (``public``):

- ``check_url`` at validation time turns an obviously refused URL (a private
  literal, a name resolving only to private addresses) into a 400 naming
  the parameter, before anything runs.
- ``guarded_transport`` is the HTTP transport every guarded MCP connection
  uses: it resolves the host itself at connect time, checks every address
  and connects to the one it checked. A name that did not resolve at
  validation, or whose DNS answer changed since (rebinding), is checked
  again where it matters: the address the socket is opened to is the
  address that was judged. TLS still verifies the certificate against the
  host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpcore2
import httpx2
from httpcore2 import AsyncNetworkStream
from httpcore2._backends.auto import AutoBackend
from httpcore2._backends.base import AsyncNetworkBackend
from httpcore2._types import SOCKET_OPTION

from responsa.protocol.errors import invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DENY: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n) for n in (
        "0.0.0.0/8",          # "this network"
        "100.64.0.0/10",      # shared address space (carrier NAT; 100.100.100.200 is a metadata service)
        "169.254.0.0/16",     # link-local (169.254.169.254: cloud metadata)
        "192.0.0.0/24",       # IETF protocol assignments
        "198.18.0.0/15",      # benchmarking
        "224.0.0.0/4",        # multicast
        "240.0.0.0/4",        # reserved, broadcast
        "::/128", "::1/128",
        "::ffff:0:0/96",      # IPv4-mapped: the embedded IPv4 address is checked instead
        "64:ff9b::/96",       # NAT64 well-known prefix wraps any IPv4 address
        "64:ff9b:1::/48",     # local-use NAT64
        "2001::/32",          # Teredo
        "2002::/16",          # 6to4 wraps any IPv4 address (2002:c0a8::/32 is 192.168.0.0/16)
        "fc00::/7",           # unique local
        "fe80::/10",          # link-local
        "fec0::/10",          # deprecated site-local
        "ff00::/8",           # multicast
    ))

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
ClientFactory = Callable[..., httpx2.AsyncClient]


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address wraps, if it wraps one."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:  # the low 32 bits
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def public(ip: IPAddress) -> bool:
    """Whether a request may make this server connect to ``ip`` (no allow list applied)."""
    if not ip.is_global or any(ip.version == net.version and ip in net for net in DENY):
        return False
    inner = _embedded_v4(ip)
    return inner is None or public(inner)


def allowed(host: str, ip: IPAddress | None, allow: Iterable[str]) -> bool:
    """Whether the operator allow-listed ``host`` by name or ``ip`` by network."""
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the literal itself for an IP); raises ``OSError``."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Strip an IPv6 scope ("fe80::1%eth0"): the address itself is what is judged.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def refused(host: str, addresses: list[IPAddress], allow: Iterable[str]) -> IPAddress | None:
    """The first address of ``host`` that is neither public nor allow-listed."""
    if allowed(host, None, allow):
        return None
    for ip in addresses:
        if not public(ip) and not allowed(host, ip, allow):
            return ip
    return None


async def check_url(url: str, allow: list[str], param: str) -> None:
    """400 naming ``param`` if ``url`` is not an http(s) URL of a public host.
    A host that does not resolve passes here: the connection itself resolves
    through ``guarded_transport``, which refuses it then if it must."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"Invalid MCP server URL in '{param}': expected an http:// or https:// URL.", param)
    host = parts.hostname
    if allowed(host, None, allow):
        return
    try:
        addresses = await resolve(host, parts.port or 443)
    except OSError:
        return
    ip = refused(host, addresses, allow)
    if ip is not None:
        raise invalid(f"The MCP server URL in '{param}' resolves to a non-public address ({ip}); such "
                      "servers must be allow-listed by the operator ([mcp] allow_private).", param,
                      "mcp_server_url_refused")


class RefusedAddress(httpcore2.ConnectError):
    """The host resolved (at connect time) to an address requests may not reach."""


class GuardedBackend(AsyncNetworkBackend):
    """An httpcore network backend that resolves each host itself, refuses
    non-public addresses and connects to exactly the address it checked."""

    def __init__(self, allow: Iterable[str]) -> None:
        self._allow = list(allow)
        self._inner = AutoBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[SOCKET_OPTION] | None = None) -> AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(resolve(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        if allowed(host, None, self._allow):
            pinned = addresses
        else:
            pinned = [ip for ip in addresses if public(ip) or allowed(host, ip, self._allow)]
            if not pinned or len(pinned) < len(addresses):
                bad = refused(host, addresses, self._allow)
                raise RefusedAddress(f"refused: {host!r} resolves to a non-public address ({bad}); such servers "
                                     "must be allow-listed by the operator ([mcp] allow_private)")
        last: Exception | None = None
        for ip in pinned:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SOCKET_OPTION] | None = None) -> AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not reachable from request-supplied MCP URLs")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(allow: Iterable[str]) -> httpx2.AsyncHTTPTransport:
    """An httpx2 transport whose every connection goes through ``GuardedBackend``."""
    transport = httpx2.AsyncHTTPTransport()
    # httpx2 takes no network backend argument; its pool is the documented
    # httpcore object, rebuilt here with the same TLS context and the guard.
    pool = transport._pool
    assert isinstance(pool, httpcore2.AsyncConnectionPool)
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=pool._ssl_context,
                                                    network_backend=GuardedBackend(allow))
    return transport


def guarded_client_factory(allow: Iterable[str]) -> ClientFactory:
    """A drop-in for the MCP SDK's ``create_mcp_http_client`` whose clients
    connect only through ``guarded_transport``."""
    allowed_list = list(allow)

    def factory(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout if timeout is not None else 30.0, auth=auth,
                                  transport=guarded_transport(allowed_list))

    return factory
