"""Refuse request-supplied MCP server URLs that point into the server's own
network (SSRF): loopback, private, link-local and other non-public
addresses, unless the operator allow-listed the host or its network.

The check resolves the host name once, before connecting; a DNS answer that
changes between this check and the connection is not caught here (run
Responsa behind an egress proxy if that matters to you).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from responsa.protocol.errors import invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(host: str, ip: IPAddress | None, allow: list[str]) -> bool:
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


def _public(ip: IPAddress) -> bool:
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


async def check_url(url: str, allow: list[str], param: str) -> None:
    """400 naming ``param`` if ``url`` is not an http(s) URL of a public host.
    A host that does not resolve passes: connecting will fail and be
    reported as a server error like any other unreachable server."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"Invalid MCP server URL in '{param}': expected an http:// or https:// URL.", param)
    host = parts.hostname
    if _allowed(host, None, allow):
        return
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443,
                                                                 type=socket.SOCK_STREAM)
        except OSError:
            return
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for ip in addresses:
        if not _public(ip) and not _allowed(host, ip, allow):
            raise invalid(f"The MCP server URL in '{param}' resolves to a non-public address ({ip}); such "
                          "servers must be allow-listed by the operator ([mcp] allow_private).", param,
                          "mcp_server_url_refused")
