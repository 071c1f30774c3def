"""Which MCP servers a request uses, and how to reach them.

Both request forms end up as ``ServerSpec``s: the OpenAI form
(``tools: [{"type": "mcp", ...}]``) and the reference form (``mcp_servers``
slugs resolved through the operator's registry, or URLs, plus
``credentials`` matched to servers by connection name). A spec carries the
secrets needed to connect (headers, env), so specs live only in memory for
one request; what gets stored or echoed is ``redacted_tool``.

Registry entries (``[mcp.servers."org/name"]`` in the config file)::

    url = "https://example.com/mcp"      # or command = "...", args = [...], env = {...}
    transport = "streamable_http"        # "sse" / "stdio"; default: from the URL / command
    connection_name = "github"           # credentials with this name apply here
    credential_header = "Authorization"  # where a credential goes ...
    credential_format = "Bearer {token}" # ... formatted from its values
    credential_headers = {"X-Key" = "{api_key}"}   # several headers
    credential_env = {"GITHUB_TOKEN" = "{token}"}  # stdio servers
    timeout = 60                         # seconds per tool call
    versions = {"v1" = {url = "..."}}    # "org/name@v1" overrides

Without a mapping (and for URL servers) a credential's values become
headers: ``token``/``api_key``/``access_token``/``bearer_token`` as
``Authorization: Bearer <value>``, ``authorization`` verbatim, any other key
as a header of that name (env vars of that name, upper-cased, for stdio).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from responsa.protocol.errors import invalid

DEFAULT_CALL_TIMEOUT_S = 60.0
REDACTED = "[redacted]"
_SLUG = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
"""What an HTTP client can send as a header value: printable ASCII, no line breaks."""
_BEARER_KEYS = frozenset({"token", "api_key", "apikey", "access_token", "bearer_token", "key"})
_OPENAI_KEYS = frozenset({"type", "server_label", "server_url", "headers", "allowed_tools", "require_approval",
                          "server_description", "authorization"})


@dataclass(slots=True)
class ServerSpec:
    label: str
    transport: str
    url: str | None = None
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    allowed_tools: Any = None
    require_approval: Any = "never"
    description: str | None = None
    timeout: float = DEFAULT_CALL_TIMEOUT_S
    guard_url: bool = True
    """Request-supplied URLs are checked against private networks; the
    operator's registry entries are trusted."""
    egress_allow: list[str] = field(default_factory=list)
    """The operator's ``[mcp] allow_private`` list, applied again at connect
    time to a guarded URL (``urlguard.guarded_transport``)."""
    param: str = ""
    connection_names: set[str] = field(default_factory=set)
    credential_map: dict[str, Any] = field(default_factory=dict)


def _checked_url(url: str, param: str) -> str:
    """A request-supplied URL that ``urlsplit`` (and later the HTTP client) can take apart."""
    try:
        _ = urlsplit(url).port  # raises on a malformed host or a bad port
    except ValueError:
        raise invalid(f"Invalid MCP server URL in '{param}': {url[:200]!r} cannot be parsed.", param) from None
    return url


def _transport_for(url: str, declared: Any = None) -> str:
    if declared in ("streamable_http", "sse", "stdio"):
        return str(declared)
    return "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "streamable_http"


def _headers(value: Any, param: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid(f"Invalid type for '{param}': expected an object of strings.", param, "invalid_type")
    for key, item in value.items():
        if not _HEADER_NAME.match(key) or not _HEADER_VALUE.match(item):
            raise invalid(f"Invalid header in '{param}': {key[:40]!r} is not a header name with a printable ASCII "
                          "value.", f"{param}.{key[:40]}")
    return dict(value)


def _check_filter(value: Any, param: str, *, approval: bool) -> None:
    """``allowed_tools`` / ``require_approval`` in OpenAI's shapes."""
    if value is None or (approval and value in ("always", "never")):
        return
    if not approval and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return
    if isinstance(value, dict):
        groups = [value.get("always"), value.get("never")] if approval else [value]
        keys = {"always", "never"} if approval else {"tool_names", "read_only"}
        if set(value) <= keys and all(_is_tool_filter(g) for g in groups if g is not None):
            return
    shape = "'always', 'never' or {\"always\"|\"never\": {\"tool_names\": [...]}}" if approval else \
        "an array of tool names or {\"tool_names\": [...], \"read_only\": bool}"
    raise invalid(f"Invalid value for '{param}': expected {shape}.", param)


def _is_tool_filter(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) <= {"tool_names", "read_only"}
            and (value.get("tool_names") is None or (isinstance(value["tool_names"], list)
                                                     and all(isinstance(n, str) for n in value["tool_names"])))
            and isinstance(value.get("read_only", False), bool))


def openai_server(tool: dict[str, Any], i: int) -> ServerSpec:
    """A ``{"type": "mcp", ...}`` entry of ``tools``."""
    p = f"tools[{i}]"
    unknown = sorted(set(tool) - _OPENAI_KEYS)
    if unknown:
        what = "is not supported by this server" if unknown[0] in ("connector_id", "tunnel_id") else "is unknown"
        raise invalid(f"Parameter '{p}.{unknown[0]}' {what}.", f"{p}.{unknown[0]}", "unknown_parameter")
    label = tool.get("server_label")
    if not isinstance(label, str) or not label.strip():
        raise invalid(f"Missing required parameter: '{p}.server_label'.", f"{p}.server_label",
                      "missing_required_parameter")
    url = tool.get("server_url")
    if not isinstance(url, str) or not url:
        raise invalid(f"Missing required parameter: '{p}.server_url'.", f"{p}.server_url",
                      "missing_required_parameter")
    _checked_url(url, f"{p}.server_url")
    headers = _headers(tool.get("headers"), f"{p}.headers")
    auth = tool.get("authorization")
    if auth is not None:
        if not isinstance(auth, str) or not _HEADER_VALUE.match(auth):
            raise invalid(f"Invalid type for '{p}.authorization': expected a string of printable ASCII "
                          "characters.", f"{p}.authorization", "invalid_type")
        headers["Authorization"] = f"Bearer {auth}"
    _check_filter(tool.get("allowed_tools"), f"{p}.allowed_tools", approval=False)
    _check_filter(tool.get("require_approval"), f"{p}.require_approval", approval=True)
    description = tool.get("server_description")
    if description is not None and not isinstance(description, str):
        raise invalid(f"Invalid type for '{p}.server_description': expected a string.",
                      f"{p}.server_description", "invalid_type")
    return ServerSpec(label=label, transport=_transport_for(url), url=url, headers=headers,
                      allowed_tools=tool.get("allowed_tools"),
                      # OpenAI's default: ask before sending anything to a remote server.
                      require_approval=tool.get("require_approval") or "always",
                      description=description, param=f"{p}.server_url")


def redacted_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """The tool as stored and echoed: header values and tokens never leave the request."""
    out = dict(tool)
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k: REDACTED for k in out["headers"]}
    if out.get("authorization") is not None:
        out["authorization"] = REDACTED
    return out


def _registry_entry(slug: str, version: str | None, registry: dict[str, dict[str, Any]],
                    param: str) -> dict[str, Any]:
    entry = registry.get(f"{slug}@{version}") if version else None
    if entry is None:
        entry = registry.get(slug)
        if entry is None:
            raise invalid(f"Unknown MCP server {slug!r} in '{param}': it is not in this server's MCP registry.",
                          param, "mcp_server_not_found")
        if version:
            versions = entry.get("versions") or {}
            if version not in versions:
                raise invalid(f"MCP server {slug!r} has no version {version!r} ('{param}').", param,
                              "mcp_server_not_found")
            entry = {**entry, **versions[version]}
    return entry


def _from_registry(slug: str, version: str | None, registry: dict[str, dict[str, Any]], param: str) -> ServerSpec:
    entry = _registry_entry(slug, version, registry, param)
    names = {slug}
    if entry.get("connection_name"):
        names.add(str(entry["connection_name"]))
    cmap = {k: entry[k] for k in ("credential_header", "credential_format", "credential_headers",
                                  "credential_env") if k in entry}
    common: dict[str, Any] = {
        "label": slug, "allowed_tools": entry.get("allowed_tools"),
        "require_approval": "never", "description": entry.get("description"),
        "timeout": float(entry.get("timeout", DEFAULT_CALL_TIMEOUT_S)), "guard_url": False, "param": param,
        "connection_names": names, "credential_map": cmap,
        "headers": {str(k): str(v) for k, v in (entry.get("headers") or {}).items()},
    }
    if entry.get("command"):
        return ServerSpec(transport="stdio", command=str(entry["command"]),
                          args=[str(a) for a in entry.get("args") or []],
                          env={str(k): str(v) for k, v in (entry.get("env") or {}).items()}, **common)
    if not entry.get("url"):
        raise invalid(f"MCP server {slug!r} is misconfigured on this server (no url or command).", param,
                      "mcp_server_misconfigured")
    url = str(entry["url"])
    return ServerSpec(transport=_transport_for(url, entry.get("transport")), url=url, **common)


def reference_servers(raw: Any, registry: dict[str, dict[str, Any]]) -> list[ServerSpec]:
    """``mcp_servers``: a string or list of slugs (``org/name[@v]``), URLs, or
    ``{"slug"|"url", "version"?, "name"?}`` objects."""
    entries = raw if isinstance(raw, list) else [raw]
    single = not isinstance(raw, list)
    specs: list[ServerSpec] = []
    for i, entry in enumerate(entries):
        param = "mcp_servers" if single else f"mcp_servers[{i}]"
        name = None
        if isinstance(entry, str):
            target, version = entry, None
            if not entry.startswith(("http://", "https://")) and "@" in entry:
                target, version = entry.rsplit("@", 1)
        elif isinstance(entry, dict):
            unknown = sorted(set(entry) - {"slug", "url", "version", "name", "credentials"})
            if unknown:
                raise invalid(f"Unknown parameter: '{param}.{unknown[0]}'.", f"{param}.{unknown[0]}",
                              "unknown_parameter")
            if entry.get("credentials"):
                raise invalid(f"Encrypted credentials in '{param}.credentials' are not supported: send "
                              "'credentials' in plain JSON over TLS (the dedalus client does with "
                              "as_base_url='').", f"{param}.credentials", "unsupported_parameter")
            if bool(entry.get("slug")) == bool(entry.get("url")):
                raise invalid(f"'{param}' needs exactly one of 'slug' or 'url'.", param)
            raw_target = entry.get("slug") or entry.get("url")
            version, name = entry.get("version"), entry.get("name")
            if not isinstance(raw_target, str) or not all(v is None or isinstance(v, str) for v in (version, name)):
                raise invalid(f"Invalid type in '{param}': 'slug', 'url', 'version' and 'name' are strings.",
                              param, "invalid_type")
            target = raw_target
        else:
            raise invalid(f"Invalid type for '{param}': expected a slug, a URL or an object.", param,
                          "invalid_type")
        if target.startswith(("http://", "https://")):
            netloc = urlsplit(_checked_url(target, param)).netloc
            spec = ServerSpec(label=name or netloc, transport=_transport_for(target), url=target, param=param,
                              connection_names={n for n in (name, netloc, target) if n})
        elif _SLUG.match(target):
            spec = _from_registry(target, version, registry, param)
            if name:
                spec.label = name
                spec.connection_names.add(name)
        else:
            raise invalid(f"Invalid value for '{param}': {target!r} is neither an 'org/name' slug nor an "
                          "http(s) URL.", param)
        if any(s.label == spec.label for s in specs):
            raise invalid(f"MCP server {spec.label!r} is listed twice in 'mcp_servers'.", param)
        specs.append(spec)
    return specs


@dataclass(slots=True)
class Credential:
    connection_name: str
    values: dict[str, str]


def parse_credentials(raw: Any) -> list[Credential]:
    entries = raw if isinstance(raw, list) else [raw]
    out = []
    for i, entry in enumerate(entries):
        param = f"credentials[{i}]" if isinstance(raw, list) else "credentials"
        if not isinstance(entry, dict) or set(entry) - {"connection_name", "values"}:
            raise invalid(f"Invalid value for '{param}': expected {{\"connection_name\": str, \"values\": "
                          "{...}}.", param)
        name, values = entry.get("connection_name"), entry.get("values")
        if not isinstance(name, str) or not name:
            raise invalid(f"Missing required parameter: '{param}.connection_name'.", f"{param}.connection_name",
                          "missing_required_parameter")
        if not isinstance(values, dict) or not all(isinstance(v, str | int | bool) for v in values.values()):
            raise invalid(f"Invalid type for '{param}.values': expected an object of strings, numbers or "
                          "booleans.", f"{param}.values", "invalid_type")
        out.append(Credential(name, {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                                     for k, v in values.items()}))
    return out


def _formatted(template: Any, values: dict[str, str], spec: ServerSpec, param: str) -> str:
    try:
        return str(template).format_map(values)
    except KeyError as exc:
        raise invalid(f"The credentials for MCP server {spec.label!r} lack the value {exc.args[0]!r} it "
                      "needs.", param, "missing_credential_value") from None


def apply_credentials(specs: list[ServerSpec], credentials: list[Credential], param: str = "credentials") -> None:
    """Put each credential into the headers/env of the servers whose
    connection name it names; a credential that matches no server is an
    error (it would otherwise be silently ignored)."""
    for i, cred in enumerate(credentials):
        p = f"{param}[{i}]" if len(credentials) > 1 else param
        targets = [s for s in specs if cred.connection_name in s.connection_names]
        if not targets:
            raise invalid(f"'{p}.connection_name' {cred.connection_name!r} matches no server in "
                          "'mcp_servers'.", f"{p}.connection_name")
        for spec in targets:
            _apply(spec, cred.values, p)
            if not all(_HEADER_VALUE.match(v) for v in spec.headers.values()):
                raise invalid(f"'{p}.values' holds a value that cannot be sent in an HTTP header (printable "
                              "ASCII only).", f"{p}.values")


def _apply(spec: ServerSpec, values: dict[str, str], param: str) -> None:
    cmap = spec.credential_map
    if spec.transport == "stdio":
        if "credential_env" in cmap:
            spec.env.update({k: _formatted(v, values, spec, param) for k, v in cmap["credential_env"].items()})
        else:
            spec.env.update({k.upper(): v for k, v in values.items()})
        return
    if "credential_header" in cmap or "credential_headers" in cmap:
        mapping = dict(cmap.get("credential_headers") or {})
        if "credential_header" in cmap:
            mapping[cmap["credential_header"]] = cmap.get("credential_format", "{token}")
        spec.headers.update({k: _formatted(v, values, spec, param) for k, v in mapping.items()})
        return
    for key, value in values.items():
        if key.lower() in _BEARER_KEYS:
            spec.headers["Authorization"] = f"Bearer {value}"
        elif key.lower() == "authorization":
            spec.headers["Authorization"] = value
        elif _HEADER_NAME.match(key):
            spec.headers[key] = value
        else:
            raise invalid(f"Credential value name {key!r} in '{param}.values' cannot be sent as a header.",
                          f"{param}.values")
