"""Maps ``provider/model`` names to provider instances.

A provider family registers its factory once with ``@register("kind")``;
configured providers (``[providers.<name>]`` in the config file) pick a
kind and are instantiated lazily on first use, so an unused heavyweight
provider (the embedded model) costs nothing at start-up. What *can* be
checked without loading anything (unknown kinds, model files that do not
exist) is checked by :meth:`Registry.check` when the server starts, so a
typo fails the start-up with a clear message instead of a request later.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from responsa.config import KEYED_PROVIDERS, ProviderConfig, Settings
from responsa.protocol.errors import NotFound
from responsa.providers.base import Provider, ProviderError

Factory = Callable[[ProviderConfig], Provider]
Checker = Callable[[ProviderConfig], list[str]]

_FACTORIES: dict[str, Factory] = {}
_CHECKERS: dict[str, Checker] = {}
_OPTIONS: dict[str, frozenset[str]] = {}

# kind -> module that registers it; imported on first use only.
_KIND_MODULES = {
    "test": "responsa.providers.test",
    "chat-completions": "responsa.providers.chat_completions",
    "openai-responses": "responsa.providers.openai_responses",
    "anthropic": "responsa.providers.anthropic",
    "local": "responsa.providers.local",
}


def register(kind: str, *, check: Checker | None = None,
             options: Iterable[str] | None = None) -> Callable[[Factory], Factory]:
    """Register a provider family. ``check`` validates a configuration at
    start-up without building the provider (returns problems, empty if fine);
    ``options`` names the keys its ``[providers.<name>]`` table may carry
    besides ``kind``/``base_url``/``api_key_env``/``models``, so a misspelt
    one fails the start-up naming it instead of being ignored."""
    def deco(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        if check is not None:
            _CHECKERS[kind] = check
        if options is not None:
            _OPTIONS[kind] = frozenset(options)
        return factory

    return deco


@runtime_checkable
class ClosedModelSet(Protocol):
    """A provider that serves exactly the models it names (the embedded
    model): any other name is rejected before a request starts, so a typo is
    a 404 listing what exists rather than a failed stream."""

    def known_models(self) -> list[str]: ...


@runtime_checkable
class AppliesDefaults(Protocol):
    """A provider that applies its own sampling defaults when a request
    leaves them unset (e.g. the embedded model's temperature and token
    cap). The Response echoes these, so it reports what was really used."""

    def applied_defaults(self, model: str) -> dict[str, Any]: ...


def unknown_options(cfg: ProviderConfig) -> list[str]:
    """Options of ``cfg`` its kind did not declare (none when it declared none)."""
    known = _OPTIONS.get(cfg.kind)
    if known is None:
        return []
    problems = []
    for key in sorted(set(cfg.options) - known):
        close = difflib.get_close_matches(key, sorted(known | {"kind", "base_url", "api_key_env", "models"}), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"
        problems.append(f"unknown option '{key}' for kind '{cfg.kind}'{hint}")
    return problems


class UnknownModel(NotFound):
    """No provider serves this model name (a 404 ``model_not_found``)."""

    default_code = "model_not_found"


@dataclass(frozen=True, slots=True)
class Resolved:
    provider: Provider
    upstream: str
    """The model name the provider receives."""
    name: str
    """The canonical ``provider/model`` name, echoed in the Response."""


def _load_kind(kind: str) -> None:
    if kind not in _FACTORIES and kind in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[kind])


class Registry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._instances: dict[str, Provider] = {}
        self._closed: dict[str, bool] = {}
        """Whether each provider is a ``ClosedModelSet`` (a runtime protocol
        check costs ~25 us: done once per provider, not per request)."""

    @property
    def settings(self) -> Settings:
        """The settings the registry was built from (MCP registry, allow lists)."""
        return self._settings

    def resolve(self, model: str) -> tuple[Provider, str]:
        """``provider/model`` -> (provider, upstream model name)."""
        found = self.lookup(model)
        return found.provider, found.upstream

    def lookup(self, model: str) -> Resolved:
        """A name as a client wrote it -> provider, upstream name and
        canonical name. A bare name goes through aliases, then to the default
        model's provider; an unknown provider prefix is an error rather than a
        guess (upstream ids that contain slashes are written ``vllm/org/model``).
        Errors name what the client typed and list what exists."""
        target = self._settings.aliases.get(model, model)
        name, sep, upstream = target.partition("/")
        if not sep:
            name, upstream = self._settings.default_model.partition("/")[0], target
        if name not in self._settings.providers:
            why = f"no provider '{name}' is configured"
            if name in KEYED_PROVIDERS:  # an unknown ``openai/...`` most often means its key variable is missing
                why += f" (set {KEYED_PROVIDERS[name].key_env} to enable it)"
            raise UnknownModel(self._unknown(model, why, bare=not sep))
        provider = self.get(name)
        closed = self._closed.get(name)
        if closed is None:
            closed = self._closed[name] = isinstance(provider, ClosedModelSet)
        if closed and isinstance(provider, ClosedModelSet) and upstream not in provider.known_models():
            served = ", ".join(provider.known_models()) or "nothing"
            raise UnknownModel(self._unknown(model, f"provider '{name}' serves only {served}", bare=not sep))
        return Resolved(provider, upstream, f"{name}/{upstream}")

    def _unknown(self, typed: str, why: str, *, bare: bool) -> str:
        message = f"The model '{typed}' does not exist: {why}."
        if bare:
            message += (f" A name without 'provider/' goes to the default model's provider "
                        f"(default model: {self._settings.default_model}).")
        return message + " Available: " + ", ".join(self.available()) + "."

    def available(self) -> list[str]:
        """Model names for messages, without contacting any upstream:
        a closed provider's models, configured model lists, else ``name/*``."""
        out: list[str] = []
        for name, cfg in self._settings.providers.items():
            models: list[str] = []
            try:
                provider = self.get(name)
            except ProviderError:
                continue
            if isinstance(provider, ClosedModelSet):
                models = provider.known_models()
            elif cfg.models:
                models = [*cfg.models, "*"]
            out += [f"{name}/{m}" for m in models] if models else [f"{name}/*"]
        out += list(self._settings.aliases)
        return out

    def check(self) -> list[str]:
        """Configuration problems found without loading a model or calling
        an upstream (start-up refuses to serve with any)."""
        problems: list[str] = []
        for name, cfg in self._settings.providers.items():
            _load_kind(cfg.kind)
            if cfg.kind not in _FACTORIES:
                problems.append(f"[providers.{name}]: unknown kind '{cfg.kind}' (one of: "
                                f"{', '.join(sorted(_KIND_MODULES))})")
                continue
            problems += [f"[providers.{name}]: {p}" for p in unknown_options(cfg)]
            if checker := _CHECKERS.get(cfg.kind):
                problems += [f"[providers.{name}]: {p}" for p in checker(cfg)]
            try:
                self.get(name)  # cheap: constructors validate options, load nothing
            except ProviderError as exc:
                problems.append(f"[providers.{name}]: {exc.message}")
        if not problems:
            try:
                self.lookup(self._settings.default_model)
            except UnknownModel as exc:
                problems.append(f"default model: {exc}")
        return problems

    def get(self, name: str) -> Provider:
        inst = self._instances.get(name)
        if inst is None:
            cfg = self._settings.providers[name]
            _load_kind(cfg.kind)
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
        self._closed.clear()
