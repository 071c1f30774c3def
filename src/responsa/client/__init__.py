"""Python client for a Responsa (or any Responses API) server."""

from responsa.client._client import AsyncResponsa, Responsa, create_params
from responsa.client.types import APIStatusError, InputItemList, Response, ResponseDeleted, ResponseEvent

__all__ = ["APIStatusError", "AsyncResponsa", "InputItemList", "Responsa", "Response", "ResponseDeleted",
           "ResponseEvent", "create_params"]
