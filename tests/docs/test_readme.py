"""The README's configuration example is a working configuration."""

from __future__ import annotations

import re
from pathlib import Path

from responsa.config import load_settings
from responsa.providers.registry import Registry

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_example_loads_and_routes(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    config = tmp_path / "responsa.toml"
    config.write_text(block.group(1))
    settings = load_settings(config)
    assert settings.providers["vllm"].kind == "chat-completions"
    assert settings.api_keys and settings.redis_url and settings.mcp_registry and settings.mcp_allow_private
    registry = Registry(settings)
    for name in ("llama", "vllm/meta-llama/Llama-3.1-8B-Instruct"):
        provider, upstream = registry.resolve(name)
        assert (provider.name, upstream) == ("vllm", "meta-llama/Llama-3.1-8B-Instruct")
    provider, upstream = registry.resolve("qwen2.5")  # a bare name goes to the default model's provider
    assert (provider.name, upstream) == ("vllm", "qwen2.5")
