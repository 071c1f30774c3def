"""The storage contract. SQLite and PostgreSQL implement it with the same
schema; the engine and the HTTP layer only ever see this interface.

Every method takes the tenant first: tenants (API keys) never see each
other's data because no query can be written without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Item = dict[str, Any]


class IdempotencyConflict(Exception):
    """A response with this tenant's idempotency key already exists."""

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id


@dataclass(slots=True)
class Page:
    data: list[Item]
    has_more: bool


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None) -> None:
        """Record a response that is starting, with its input items, in one
        transaction. Raises ``IdempotencyConflict`` if the key was used."""
        ...

    async def finish_response(self, tenant: str, response: dict[str, Any]) -> None:
        """Store the terminal response and its output items atomically."""
        ...

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any] | None: ...

    async def get_request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        """The stored request (secrets already stripped)."""
        ...

    async def delete_response(self, tenant: str, response_id: str) -> bool: ...

    async def load_context(self, tenant: str, response_id: str) -> list[Item] | None:
        """Input and output items of the whole ``previous_response_id``
        chain ending at ``response_id``, oldest first, in one round trip.
        ``None`` if the response does not exist for this tenant."""
        ...

    async def get_items(self, tenant: str, item_ids: list[str]) -> dict[str, Item]: ...

    async def list_input_items(self, tenant: str, response_id: str, *, after: str | None,
                               before: str | None, limit: int,
                               order: Literal["asc", "desc"]) -> Page | None: ...
