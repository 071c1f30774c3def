"""A config file key the server does not read is an error naming it, at every
level (top level, ``[mcp]``, ``[mcp.servers."..."]`` and its versions when
the file is loaded; ``[providers.x]`` options per kind when the server
starts), so a typo never silently runs the server on a default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from responsa.cli import main
from responsa.config import ConfigError, ProviderConfig, Settings, load_settings
from responsa.providers import local
from responsa.providers.registry import _OPTIONS, Registry

PROVIDERS_DIR = Path(__file__).resolve().parents[2] / "src" / "responsa" / "providers"


def load(tmp_path: Path, text: str) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text(text)
    load_settings(config)


@pytest.mark.parametrize(("text", "key", "where", "hint"), [
    ('databse_url = "sqlite:///x.db"\n', "databse_url", "the top level of", "database_url"),
    ('[aliase]\nx = "test/echo"\n', "aliase", "the top level of", "aliases"),
    ('[mcp]\nallow_privat = ["10.0.0.0/8"]\n', "allow_privat", "[mcp]", "allow_private"),
    ('[mcp.servers."acme/gh"]\nurl = "https://x/mcp"\ncredential_formt = "Bearer {t}"\n', "credential_formt",
     '[mcp.servers."acme/gh"]', "credential_format"),
    ('[mcp.servers."acme/gh"]\nurl = "https://x/mcp"\n[mcp.servers."acme/gh".versions.v1]\nurll = "https://y"\n',
     "urll", '[mcp.servers."acme/gh".versions.v1]', "url"),
])
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str, where: str, hint: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert f"Unknown key '{key}' in {where}" in message, message
    assert str(tmp_path / "responsa.toml") in message
    if hint:
        assert f"Did you mean '{hint}'?" in message


@pytest.mark.parametrize(("text", "problem"), [
    ('[providers.vllm]\nbase_url = "http://h/v1"\nmax_retry = 3\n',
     "[providers.vllm]: unknown option 'max_retry' for kind 'chat-completions' (did you mean 'max_retries'?)"),
    ('[providers.claude]\nkind = "anthropic"\nbase_url = "http://h"\nmax_tokens_param = "x"\n',
     "[providers.claude]: unknown option 'max_tokens_param' for kind 'anthropic'"),  # a chat-completions option
    ('[providers.t]\nkind = "test"\napi_kye_env = "K"\n',
     "[providers.t]: unknown option 'api_kye_env' for kind 'test' (did you mean 'api_key_env'?)"),
    ('[providers.v]\nkind = "chat-completion"\n', "[providers.v]: unknown kind 'chat-completion'"),
])
def test_provider_options_are_checked_per_kind_at_start_up(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text(text)
    problems = Registry(load_settings(config)).check()
    assert any(p.startswith(problem) for p in problems), problems


def test_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'providers' in .* must be a table"):
        load(tmp_path, 'providers = "vllm"\n')
    with pytest.raises(ConfigError, match=re.escape("[providers.v] of")):
        load(tmp_path, 'providers = {v = 1}\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "port = \n")


def test_every_documented_option_passes(tmp_path: Path) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text("""
host = "127.0.0.1"
port = 9000
log_level = "debug"
max_body_bytes = 1000
background_lease_s = 5.0
background_concurrency = 2
default_model = "vllm/m"
[providers.vllm]
kind = "chat-completions"
base_url = "http://h/v1"
models = ["m"]
max_retries = 1
retry_backoff = 0.5
timeout = 60
connect_timeout = 3
max_connections = 10
headers = {"x-org" = "a"}
capabilities = {vision = true}
model_capabilities = {"m" = {tools = false}}
max_tokens_param = "max_completion_tokens"
[providers.claude]
kind = "anthropic"
base_url = "http://h"
anthropic_version = "2023-06-01"
max_tokens = 1024
[providers.t]
kind = "test"
tool_choice_required = false
context_window = 100
[mcp.servers."acme/stdio"]
command = "python"
args = ["server.py"]
env = {A = "b"}
credential_env = {TOKEN = "{token}"}
timeout = 10
[mcp.servers."acme/gh"]
url = "https://x/mcp"
transport = "streamable-http"
allowed_tools = ["search"]
description = "GitHub"
[mcp.servers."acme/gh".versions.v1]
url = "https://x/v1/mcp"
""")
    assert Registry(load_settings(config)).check() == []


def test_declared_options_cover_what_providers_read() -> None:
    """Every ``options.get("x")`` in a provider module is declared by its kind
    (``register(options=...)``, or local's own check), so the start-up check
    never refuses an option the provider really reads."""
    for kind in ("chat-completions", "openai-responses", "anthropic", "test", "local"):
        Registry(Settings(providers={"p": ProviderConfig(name="p", kind=kind)})).check()  # imports the kind
    modules = {"chat-completions": ["chat_completions", "_http"], "openai-responses": ["openai_responses", "_http"],
               "anthropic": ["anthropic", "_http"], "test": ["test"]}
    for kind, names in modules.items():
        read = {o for n in names for o in _read_options(n)}
        assert read <= _OPTIONS[kind], (kind, read - _OPTIONS[kind])
    assert _read_options("local") <= local._OPTIONS, _read_options("local") - local._OPTIONS


def _read_options(module: str) -> set[str]:
    return set(re.findall(r"opt(?:ion)?s\.get\(\s*\"(\w+)\"", (PROVIDERS_DIR / f"{module}.py").read_text()))


def test_serve_reports_the_key_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text("prot = 9000\n")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Unknown key 'prot'" in err and "Did you mean 'port'?" in err and "Traceback" not in err


def test_every_setting_reads_from_the_environment_with_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {"RESPONSA_PORT": "9001", "RESPONSA_MAX_BODY_BYTES": "5", "RESPONSA_CONSOLE": "off",
                       "RESPONSA_ALLOW_OPEN_MODE": "yes", "RESPONSA_BACKGROUND_LEASE_S": "2.5",
                       "RESPONSA_API_KEYS": "a, b", "RESPONSA_ADMIN_KEYS": "root"}.items():
        monkeypatch.setenv(var, value)
    s = load_settings()
    assert (s.port, s.max_body_bytes, s.console, s.allow_open_mode, s.background_lease_s) == (9001, 5, False, True, 2.5)
    assert s.api_keys == ["a", "b"] and s.admin_keys == ["root"]


@pytest.mark.parametrize(("var", "value"), [("RESPONSA_PORT", "eighty"), ("RESPONSA_CONSOLE", "maybe"),
                                            ("RESPONSA_HEADER_TIMEOUT_S", "10s")])
def test_a_malformed_variable_is_named(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=re.escape(f"{var}={value!r} is not a valid")):
        load_settings()


def test_lists_from_the_file_are_read_once(tmp_path: Path) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text('api_keys = ["k1"]\nadmin_keys = ["a1"]\n')
    s = load_settings(config)
    assert s.api_keys == ["k1"] and s.admin_keys == ["a1"]
