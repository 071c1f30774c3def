"""The storage contract; the engine and the HTTP layer only ever see this
interface. ``operations.SQLStore`` implements it once, with the same schema
and SQL, over a SQLite or PostgreSQL driver (``sqlite.py``, ``postgres.py``).

Every method takes the tenant first: tenants (API keys) never see each
other's data because no query can be written without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from responsa.store.listing import ResponseFilter

from responsa.protocol.errors import APIError
from responsa.protocol.types import Item as Item  # re-exported


class IdempotencyConflict(Exception):
    """A response with this tenant's idempotency key already exists."""

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id


@dataclass(slots=True)
class Page:
    data: list[Item]
    has_more: bool


class UnknownCursor(APIError):
    """A pagination cursor names no entry of the list: a 400 naming the
    cursor, on every list endpoint (``store/paging.py`` has the rule)."""

    def __init__(self, param: str, cursor: str) -> None:
        super().__init__(f"Invalid '{param}': '{cursor}' is not in this list.", param=param)
        self.cursor = cursor


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def create_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], *, idempotency_key: str | None = None,
                              lease: tuple[str, float] | None = None) -> None:
        """Record a response that is starting, with its input items, in one
        transaction. Raises ``IdempotencyConflict`` if the key was used.
        ``lease`` (owner, expires_at) makes it a background job held by owner."""
        ...

    async def record_response(self, tenant: str, response: dict[str, Any], request: dict[str, Any],
                              input_items: list[Item], conversation_items: list[Item] | None = None) -> None:
        """``create_response`` and ``finish_response`` in ONE transaction, for a
        finished response that nobody could have observed in progress (a
        non-streamed request without an idempotency key): half the writes."""
        ...

    async def finish_response(self, tenant: str, response: dict[str, Any],
                              conversation_items: list[Item] | None = None, *, owner: str | None = None,
                              events: list[dict[str, Any]] | None = None) -> bool:
        """Store the terminal response and its output items atomically, and
        in the same transaction append ``conversation_items`` to the
        response's ``conversation_id`` (if that conversation still exists).
        With ``owner`` (a background job): only while ``owner`` still holds the
        job, also storing ``events``; ``False`` (nothing written) otherwise."""
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
                               order: Literal["asc", "desc"]) -> Page | None:
        """``None`` if the response does not exist for this tenant;
        ``UnknownCursor`` if ``after``/``before`` names none of its input items."""
        ...

    # Background jobs (``engine.background``): the response row is the job,
    # held by one replica at a time through a lease; its events are stored
    # as they are produced so any replica can replay them.
    async def append_events(self, tenant: str, response_id: str, owner: str, events: list[dict[str, Any]], *,
                            response: dict[str, Any] | None = None) -> bool:
        """Store ``events`` (and, if given, the response's new state) while
        ``owner`` still holds the job; ``False`` (nothing written) otherwise."""
        ...

    async def get_events(self, tenant: str, response_id: str, after: int) -> list[dict[str, Any]]:
        """Stored events with a sequence number above ``after``, in order."""
        ...

    async def close_job(self, tenant: str, response: dict[str, Any], events: list[dict[str, Any]], *,
                        expired_before: float) -> list[dict[str, Any]] | None:
        """End a job from outside its runner (cancelled, or its runner died):
        if it is still queued or in progress with a lease expiring before
        ``expired_before``, store ``response`` and append ``events``
        renumbered after the last stored one. The events as stored, or
        ``None`` if the job was no longer open."""
        ...

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        """Extend every open job ``owner`` holds (one statement per replica)."""
        ...

    async def expired_jobs(self, now: float, limit: int) -> list[tuple[str, str, str]]:
        """``(tenant, id, status)`` of open jobs whose lease ran out."""
        ...

    async def claim_job(self, tenant: str, response_id: str, owner: str, now: float, expires_at: float) -> bool:
        """Take over a still-``queued`` job whose lease ran out; ``True`` if ours now."""
        ...

    # Conversations: ``conversation`` is the API object (id, object,
    # created_at, metadata); items are kept in append order.
    async def create_conversation(self, tenant: str, conversation: dict[str, Any], items: list[Item]) -> None:
        """The conversation and its initial items, in one transaction."""
        ...

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def update_conversation(self, tenant: str, conversation_id: str,
                                  metadata: dict[str, str]) -> dict[str, Any] | None: ...

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool: ...

    async def load_conversation(self, tenant: str, conversation_id: str) -> list[Item] | None:
        """Every item, oldest first, in one round trip; ``None`` if the
        conversation does not exist for this tenant."""
        ...

    async def append_conversation_items(self, tenant: str, conversation_id: str, items: list[Item], *,
                                        response_id: str | None = None) -> bool:
        """Append contiguously (positions allocated in the transaction);
        ``False`` if the conversation does not exist."""
        ...

    async def list_conversation_items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int,
                                      order: Literal["asc", "desc"]) -> Page | None:
        """``None`` if the conversation does not exist; ``UnknownCursor`` if
        ``after`` names no item of it."""
        ...

    async def get_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> Item | None: ...

    async def delete_conversation_item(self, tenant: str, conversation_id: str, item_id: str) -> bool: ...

    # Prompts: ``prompt`` is the API object of one version. Tenant ``""``
    # holds the server's seeded prompts, which every tenant reads.
    async def create_prompt(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        """Store ``prompt`` as version 1 (the store sets ``version``);
        ``None`` if the id is taken (by this tenant or the server)."""
        ...

    async def add_prompt_version(self, tenant: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
        """Store ``prompt`` under the next version number, allocated in the
        same transaction; ``None`` if the tenant owns no prompt with its id."""
        ...

    async def get_prompt(self, tenant: str, prompt_id: str, version: int | None = None) -> dict[str, Any] | None:
        """The given version, or the latest; the tenant's own or a seeded one."""
        ...

    async def prompt_owner(self, tenant: str, prompt_id: str) -> str | None:
        """``tenant``, ``""`` (seeded by the server) or ``None`` (no such prompt)."""
        ...

    async def list_prompts(self, tenant: str) -> list[dict[str, Any]]:
        """The latest version of every prompt the tenant can read."""
        ...

    async def list_prompt_versions(self, tenant: str, prompt_id: str) -> list[dict[str, Any]]: ...

    async def delete_prompt(self, tenant: str, prompt_id: str) -> bool: ...

    async def server_secret(self, name: str) -> str:
        """A random secret created once per database (the first replica to ask
        creates it), so every replica and restart agrees on it."""
        ...

    # Lists (``store/listing.py``): keyset pages, newest first by default;
    # ``UnknownCursor`` if ``after`` names no row of this tenant.
    async def list_responses(self, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                             where: ResponseFilter) -> Page:
        """Stored Response objects that ``where`` keeps."""
        ...

    async def list_conversations(self, tenant: str, *, after: str | None, limit: int,
                                 order: Literal["asc", "desc"]) -> Page:
        """Conversation objects (id, object, created_at, metadata)."""
        ...

    # Files (``store/files.py``): ``file`` is OpenAI's FileObject; ``storage``
    # names the blob backend holding the content (``responsa.files.blobs``).
    # A file past its ``expires_at`` (compared with ``now``) is not found.
    async def create_file(self, tenant: str, file: dict[str, Any], storage: str,
                          chunks: Iterable[bytes] = ()) -> None:
        """The file's row and, for content kept in the database, its
        ``chunks`` (read one at a time), in one transaction."""
        ...

    async def get_file(self, tenant: str, file_id: str, now: int) -> tuple[dict[str, Any], str] | None:
        """``(FileObject, storage)``; ``None`` if missing, expired or another tenant's."""
        ...

    async def list_files(self, tenant: str, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                         purpose: str | None, now: int) -> Page: ...

    async def delete_file(self, tenant: str, file_id: str) -> str | None:
        """Delete the row and its database chunks; the storage it used, ``None`` if none."""
        ...

    async def file_chunk(self, tenant: str, file_id: str, n: int) -> bytes | None:
        """Chunk ``n`` of a file kept in the database (``None`` past the last)."""
        ...

    async def expired_files(self, now: int, limit: int) -> list[tuple[str, str, str]]:
        """``(tenant, id, storage)`` of files past their ``expires_at``."""
        ...
