"""Responsa: a self-hostable OpenAI Responses API server for any model.

``from responsa import Responsa`` gives the Python client; the server lives
in ``responsa.api`` and starts with ``responsa serve``.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from responsa.client import AsyncResponsa, Responsa


def __getattr__(name: str) -> Any:
    # Lazy so that importing the server does not import the client and vice versa.
    if name in ("Responsa", "AsyncResponsa"):
        from responsa import client

        return getattr(client, name)
    raise AttributeError(name)


__all__ = ["AsyncResponsa", "Responsa", "__version__"]
