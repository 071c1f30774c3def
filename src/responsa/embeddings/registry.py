"""Embedding model names -> ``Embedder``.

``local/all-minilm-l6-v2`` is always there (it ships with Responsa). Any
other ``provider/model`` goes to that configured provider when its kind
speaks OpenAI's ``/embeddings`` (``HTTPProvider.embeddings_path``:
``openai-responses`` and ``chat-completions``); ``[aliases]`` apply first,
so ``text-embedding-3-small = "local/all-minilm-l6-v2"`` points OpenAI code
at the local model. A new local model is one entry in ``LOCAL``.
"""

from __future__ import annotations

from collections.abc import Callable

from responsa.embeddings.base import Embedder
from responsa.embeddings.local import MODEL, minilm
from responsa.embeddings.upstream import JSONUpstream, UpstreamEmbedder
from responsa.protocol.errors import invalid
from responsa.providers.base import ProviderError
from responsa.providers.registry import Registry, UnknownModel

DEFAULT_EMBEDDING_MODEL = MODEL
_CLOSED = ("local", "test")
"""Provider kinds whose models are a closed set without embedding models: a
name under them that ``LOCAL`` lacks is a typo (404), not a wrong provider."""

LOCAL: dict[str, Callable[[], Embedder]] = {MODEL: minilm}
"""Embedding models served in-process, by name (each loads on first use)."""


def lookup(registry: Registry, model: str) -> Embedder:
    """The embedder for a model name as a client wrote it: a 404
    ``model_not_found`` for a name nothing serves, a 400 for a provider that
    has no embeddings endpoint; both list the embedding models there are."""
    target = registry.settings.aliases.get(model, model)
    if target in LOCAL:
        return LOCAL[target]()
    provider_name, sep, upstream = target.partition("/")
    cfg = registry.settings.providers.get(provider_name)
    if not sep or cfg is None or cfg.kind in _CLOSED:
        raise UnknownModel(f"The embedding model '{model}' does not exist. Embedding models: "
                           f"{', '.join(available(registry))}.", param="model")
    provider = registry.get(provider_name)
    path = getattr(provider, "embeddings_path", None)
    if not isinstance(path, str) or not isinstance(provider, JSONUpstream):
        raise invalid(f"The model '{model}' cannot embed: provider '{provider_name}' (kind '{cfg.kind}') has no "
                      f"embeddings endpoint. Embedding models: {', '.join(available(registry))}.", "model",
                      "model_not_supported")
    return UpstreamEmbedder(provider, path, upstream, target)


def available(registry: Registry) -> list[str]:
    """Embedding model names for messages: the local ones, then ``provider/*``
    for each provider that can embed (its models are whatever its upstream has)."""
    out = list(LOCAL)
    for name, cfg in registry.settings.providers.items():
        if cfg.kind in _CLOSED:
            continue
        try:
            provider = registry.get(name)
        except ProviderError:  # a misconfigured provider is reported at start-up, not here
            continue
        if isinstance(getattr(provider, "embeddings_path", None), str):
            out.append(f"{name}/*")
    return out
