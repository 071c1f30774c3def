"""Maps ``provider/model`` names to provider instances.

A provider family registers its factory once with ``@register("kind")``;
configured providers (``[providers.<name>]`` in the config file) pick a
kind and are instantiated lazily on first use, so an unused heavyweight
provider (the embedded model) costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from responsa.config import ProviderConfig, Settings
from responsa.providers.base import Provider, ProviderError

Factory = Callable[[ProviderConfig], Provider]

_FACTORIES: dict[str, Factory] = {}

# kind -> module that registers it; imported on first use only.
_KIND_MODULES = {
    "test": "responsa.providers.test",
    "chat-completions": "responsa.providers.chat_completions",
    "openai-responses": "responsa.providers.openai_responses",
    "anthropic": "responsa.providers.anthropic",
    "local": "responsa.providers.local",
}


def register(kind: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        return factory

    return deco


class UnknownModel(LookupError):
    pass


class Registry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._instances: dict[str, Provider] = {}

    @property
    def settings(self) -> Settings:
        """The settings the registry was built from (MCP registry, allow lists)."""
        return self._settings

    def resolve(self, model: str) -> tuple[Provider, str]:
        """``provider/model`` -> (provider, upstream model name). A bare
        name goes through aliases, then to the default model's provider; an
        unknown provider prefix is an error rather than a guess (upstream ids
        that contain slashes are written ``vllm/org/model``)."""
        model = self._settings.aliases.get(model, model)
        name, sep, upstream = model.partition("/")
        if not sep:
            name, upstream = self._settings.default_model.partition("/")[0], model
        if name not in self._settings.providers:
            raise UnknownModel(f"The model '{model}' does not exist: no provider '{name}' is configured.")
        return self.get(name), upstream

    def get(self, name: str) -> Provider:
        inst = self._instances.get(name)
        if inst is None:
            cfg = self._settings.providers[name]
            factory = _FACTORIES.get(cfg.kind)
            if factory is None and cfg.kind in _KIND_MODULES:
                importlib.import_module(_KIND_MODULES[cfg.kind])
                factory = _FACTORIES.get(cfg.kind)
            if factory is None:
                raise ProviderError(f"Provider '{name}' has unknown kind '{cfg.kind}'.", status=500,
                                    retryable=False)
            inst = self._instances[name] = factory(cfg)
        return inst

    @property
    def names(self) -> list[str]:
        return list(self._settings.providers)

    async def aclose(self) -> None:
        for inst in self._instances.values():
            await inst.aclose()
        self._instances.clear()
