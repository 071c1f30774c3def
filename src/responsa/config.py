"""Settings from the environment and an optional TOML file.

One place decides every default so the CLI, the app factory and the tests
agree. Secrets are referenced by environment-variable *name* in the file
(``api_key_env``) so a config file can be committed safely.

A key the server does not know is an error naming it (``ConfigError``), at
every level of the file: a typo like ``databse_url`` or ``max_retry`` would
otherwise be ignored silently and the server would run with the default —
the same reject-don't-drop rule the API applies to request parameters.
(Environment variables cannot be checked that way: the environment holds
many variables that are not ours.)
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class ProviderConfig:
    """One configured upstream, addressed as ``<name>/<model>``."""

    name: str
    kind: str
    base_url: str | None = None
    api_key_env: str | None = None
    models: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite:///responsa.db"
    redis_url: str | None = None
    default_model: str = "local/smollm2"
    aliases: dict[str, str] = field(default_factory=dict)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    api_keys: list[str] = field(default_factory=list)
    """If non-empty, only these bearer tokens are accepted. Either way each
    key is its own tenant: data is partitioned by a hash of the key."""
    admin_keys: list[str] = field(default_factory=list)
    """Keys that may read every key's usage (``GET /v1/usage``); they are
    accepted as API keys too."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_file_bytes: int = 512 * 1024 * 1024
    """Largest upload to ``/v1/files`` (OpenAI's limit); larger gets 413."""
    files_dir: str | None = None
    """Where uploaded files' content is kept: a directory every replica
    mounts. Unset: ``<db>-files/`` beside a SQLite database, inside the
    database (chunked) on PostgreSQL."""
    log_level: str = "info"
    mcp_registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    mcp_allow_private: list[str] = field(default_factory=list)
    prompts_dir: str | None = None
    secret_key: str | None = None
    """Signs compaction items; unset, a secret generated once and kept in the
    database is used, so items survive restarts and verify on every replica."""
    background_lease_s: float = 30.0
    """How long a replica holds a background response without renewing;
    a replica that dies loses its responses to the sweeper this long after."""
    background_concurrency: int = 64
    """Background responses one replica runs at once; the rest wait ``queued``."""
    vector_store_embedding_model: str = "local/all-minilm-l6-v2"
    """The embedding model new vector stores index with (a store keeps the
    model it was created with: its vectors are only comparable with that
    model's); any ``provider/model`` with an embeddings endpoint."""
    vector_store_concurrency: int = 2
    """Files one replica ingests at once (chunking and embedding are CPU work)."""
    vector_store_rrf_k: int = 5
    """Hybrid search's default fusion, weighted reciprocal rank fusion
    (``vectorstores/ranking.py``): its ``k`` (at least 1; a smaller ``k``
    makes the first ranks count more)."""
    vector_store_embedding_weight: float = 4.0
    """The vector leg's default weight in that fusion (a search's
    ``ranking_options.hybrid_search`` overrides both weights)."""
    vector_store_text_weight: float = 1.0
    """The keyword leg's default weight. These three defaults were picked on
    the dev split of ``benchmarks/retrieval.py --tune`` on both databases
    (the README gives the test split's numbers): with the former k = 60 and
    1 : 1, hybrid ranked worse than vectors alone there."""
    header_timeout_s: float = 10.0
    """A request's line and headers must arrive within this long (slow-client
    defence, ``responsa.serving``); 408 and close otherwise."""
    max_header_bytes: int = 64 * 1024
    """Request line plus headers; larger gets 431 and the connection closes."""
    shutdown_timeout_s: float = 10.0
    """On SIGTERM, requests in flight get this long before they are cancelled
    (streams recorded as failed) and the process exits."""
    workers: int = 1
    """Server processes on one port (``responsa serve --workers N``, ``responsa.workers``);
    more than one needs ``redis_url``, which they share live state through."""
    allow_open_mode: bool = False
    """Serve a non-loopback address without ``api_keys`` (every key-less
    caller then shares the ``anonymous`` tenant); refused unless set."""
    console: bool = True
    """Serve the web console at ``/console`` (``console = false`` /
    ``RESPONSA_CONSOLE=0`` to switch it off; the list endpoints stay)."""
    web_search: dict[str, Any] = field(default_factory=dict)
    """The ``[web_search]`` table: the search backend of the server-side
    ``web_search`` tool (``tools/web_search/backends.py``); empty: none."""
    raw: dict[str, Any] = field(default_factory=dict)
    default_model_source: str = "built-in default"
    """Why ``default_model`` is what it is, for the start-up log (a stray
    ``OPENAI_API_KEY`` silently changing it is a classic surprise)."""


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key and table."""


_DERIVED = {"raw", "default_model_source"}
_SCALARS = tuple(f.name for f in fields(Settings)
                 if f.name not in _DERIVED and not str(f.type).startswith(("list[", "dict[")))
"""Settings read as they are from the file's top level and from
``RESPONSA_<NAME>``: every ``Settings`` field that is not a list, a table
or derived (``_DERIVED``), so a new setting is one field, not three places
to keep in step."""
_LISTS = ("api_keys", "admin_keys")
"""Top-level lists; from the environment, comma separated."""
_TYPES = {f.name: str(f.type) for f in fields(Settings)}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _env_name(key: str) -> str:
    return f"RESPONSA_{key.upper()}"


def _from_env(key: str, value: str) -> Any:
    """An environment variable's text as its field's type; a value that is
    not one is an error naming the variable (not a traceback, not a guess)."""
    kind = _TYPES[key].split(" |")[0]
    try:
        if kind == "bool":
            word = value.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError(value)
            return word in _TRUE
        return {"int": int, "float": float}.get(kind, str)(value)
    except ValueError:
        raise ConfigError(f"{_env_name(key)}={value!r} is not a valid {kind}.") from None


_TABLES = tuple(f.name for f in fields(Settings)
                if str(f.type).startswith("dict[") and f.name not in _DERIVED and not f.name.startswith("mcp_"))
"""Top-level tables (``[aliases]``, ``[providers.*]``, ``[web_search]``...): every table-typed field but
``[mcp]``'s, which are read from the ``[mcp]`` table."""
_TOP_LEVEL = {*_SCALARS, *_LISTS, *_TABLES, "mcp"}
_MCP_KEYS = {"servers", "allow_private"}
MCP_SERVER_KEYS = {"url", "transport", "command", "args", "env", "headers", "connection_name", "credential_header",
                   "credential_format", "credential_headers", "credential_env", "allowed_tools", "description",
                   "timeout"}
"""Keys of a ``[mcp.servers."org/name"]`` entry (and of each of its ``versions``)."""


def _check_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    names = sorted(known)
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known keys: {', '.join(names)}."
            raise ConfigError(f"Unknown key '{key}' in {where}.{hint}")


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' in {where} must be a table, not {type(value).__name__}.")
    return value


def validate_config(data: Mapping[str, Any], source: str = "the config file") -> None:
    """Raise ``ConfigError`` naming the first key of ``data`` (a parsed TOML
    config) that no part of the server reads. A ``[providers.<name>]``
    table's keys depend on its kind: the provider registry checks them at
    start-up (``Registry.check``, from each kind's ``register(options=...)``)."""
    _check_keys(data, _TOP_LEVEL, f"the top level of {source}")
    for name, provider in _table(data, "providers", source).items():
        if not isinstance(provider, dict):
            raise ConfigError(f"[providers.{name}] of {source} must be a table.")
    mcp = _table(data, "mcp", source)
    _check_keys(mcp, _MCP_KEYS, f"[mcp] of {source}")
    for slug, server in _table(mcp, "servers", f"[mcp] of {source}").items():
        where = f'[mcp.servers."{slug}"] of {source}'
        if not isinstance(server, dict):
            raise ConfigError(f"{where} must be a table.")
        _check_keys(server, MCP_SERVER_KEYS | {"versions"}, where)
        for version, entry in _table(server, "versions", where).items():
            if not isinstance(entry, dict):
                raise ConfigError(f'[mcp.servers."{slug}".versions.{version}] of {source} must be a table.')
            _check_keys(entry, MCP_SERVER_KEYS, f'[mcp.servers."{slug}".versions.{version}] of {source}')


@dataclass(frozen=True, slots=True)
class KeyedProvider:
    """An upstream that exists without configuration once its standard API
    key variable is set (its base URL from a second variable, else the
    vendor's); the registry names ``key_env`` when such a provider is used
    but missing."""

    kind: str
    key_env: str
    base_url_env: str
    default_base_url: str


KEYED_PROVIDERS = {
    "openai": KeyedProvider("openai-responses", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": KeyedProvider("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
}


def _builtin_providers() -> dict[str, ProviderConfig]:
    """Providers that exist without any configuration: the deterministic
    test model, the embedded local model, and the ``KEYED_PROVIDERS`` whose
    key variable is set."""
    found = {
        "test": ProviderConfig(name="test", kind="test"),
        "local": ProviderConfig(name="local", kind="local"),
    }
    for name, keyed in KEYED_PROVIDERS.items():
        if os.environ.get(keyed.key_env):
            found[name] = ProviderConfig(name=name, kind=keyed.kind, api_key_env=keyed.key_env,
                                         base_url=os.environ.get(keyed.base_url_env, keyed.default_base_url))
    return found


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings: built-in defaults < TOML file < ``RESPONSA_*`` env < overrides."""
    s = Settings(providers=_builtin_providers())
    path = config_file or os.environ.get("RESPONSA_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        validate_config(data, str(path))
        s.raw = data
        for key in _SCALARS:
            if key in data:
                setattr(s, key, data[key])
        for key in ("prompts_dir", "files_dir"):  # relative to the config file, like any path a config names
            if key in data:
                setattr(s, key, str(Path(path).parent / data[key]))
        s.aliases.update(data.get("aliases", {}))
        for key in _LISTS:
            getattr(s, key).extend(data.get(key, []))
        for name, p in data.get("providers", {}).items():
            s.providers[name] = _provider(name, p, Path(path).parent)
        s.web_search = dict(data.get("web_search", {}))
        mcp = data.get("mcp", {})
        s.mcp_registry.update(mcp.get("servers", {}))
        s.mcp_allow_private.extend(mcp.get("allow_private", []))
    env = os.environ
    for key in _SCALARS:
        if v := env.get(_env_name(key)):
            setattr(s, key, _from_env(key, v))
    for key in _LISTS:
        if v := env.get(_env_name(key)):
            getattr(s, key).extend(k.strip() for k in v.split(",") if k.strip())
    if v := env.get("RESPONSA_MCP_ALLOW_PRIVATE"):
        s.mcp_allow_private.extend(h.strip() for h in v.split(",") if h.strip())
    for key, value in overrides.items():
        setattr(s, key, value)
    if "default_model" in overrides:
        s.default_model_source = "--model / the caller"
    elif "RESPONSA_DEFAULT_MODEL" in env:
        s.default_model_source = "RESPONSA_DEFAULT_MODEL"
    elif "default_model" in s.raw:
        s.default_model_source = f"default_model in {path}"
    else:
        s.default_model = _default_model(s.providers)
        s.default_model_source = ("OPENAI_API_KEY is set" if "openai" in s.providers else
                                  "ANTHROPIC_API_KEY is set" if "anthropic" in s.providers else
                                  "no upstream API key is set: the embedded model")
    return s


def _provider(name: str, p: dict[str, Any], base: Path) -> ProviderConfig:
    """One ``[providers.<name>]`` table. ``models`` is a list of upstream
    names, or (``kind = "local"``) a table of name = GGUF path; model files
    are relative to the config file, like every path a config names."""
    options = {k: v for k, v in p.items() if k not in ("kind", "base_url", "api_key_env", "models")}
    models = p.get("models", [])
    if isinstance(models, dict):
        options["models"] = {k: _path(v, base) for k, v in models.items()}
    if isinstance(options.get("model_path"), str):
        options["model_path"] = _path(options["model_path"], base)
    return ProviderConfig(name=name, kind=p.get("kind", "chat-completions"), base_url=p.get("base_url"),
                          api_key_env=p.get("api_key_env"), models=[str(m) for m in models], options=options)


def _path(value: Any, base: Path) -> Any:
    return str(base / Path(value).expanduser()) if isinstance(value, str) else value


def _default_model(providers: dict[str, ProviderConfig]) -> str:
    """Unless told otherwise, a server with an upstream key answers with that
    upstream (bare names like ``gpt-4o`` go there too); without one, with the
    embedded model, so ``responsa serve`` works offline out of the box."""
    if "openai" in providers:
        return "openai/gpt-4o-mini"
    if "anthropic" in providers:
        return "anthropic/claude-sonnet-4-5"
    return "local/smollm2"
