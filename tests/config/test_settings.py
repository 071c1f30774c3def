"""Where an unconfigured server sends a request: the upstream whose key is
set, else the embedded model; explicit settings always win."""

from __future__ import annotations

from pathlib import Path

import pytest

from responsa.config import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "RESPONSA_DEFAULT_MODEL", "RESPONSA_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def test_offline_default_is_the_embedded_model() -> None:
    assert load_settings().default_model == "local/smollm2"


@pytest.mark.parametrize(("var", "expected"), [("OPENAI_API_KEY", "openai/gpt-4o-mini"),
                                               ("ANTHROPIC_API_KEY", "anthropic/claude-sonnet-4-5")])
def test_an_upstream_key_makes_that_upstream_the_default(monkeypatch: pytest.MonkeyPatch, var: str,
                                                         expected: str) -> None:
    monkeypatch.setenv(var, "sk-test")
    settings = load_settings()
    assert settings.default_model == expected
    assert settings.providers[expected.split("/")[0]].api_key == "sk-test"


def test_explicit_default_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert load_settings(default_model="test/echo").default_model == "test/echo"
    config = tmp_path / "c.toml"
    config.write_text('default_model = "local/smollm2"\n')
    assert load_settings(config).default_model == "local/smollm2"
    monkeypatch.setenv("RESPONSA_DEFAULT_MODEL", "test/x")
    assert load_settings(config).default_model == "test/x"
