"""Typed results of the Python client. Unknown fields are kept (``extra``)
so a newer server never breaks an older client."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Response(_Model):
    id: str
    object: str = "response"
    created: int | None = None
    created_at: int | None = None
    model: str
    status: str
    conversation_id: str | None = None
    output: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def output_text(self) -> str:
        """All assistant text of the output, concatenated (like the openai SDK)."""
        return "".join(
            part.get("text", "")
            for item in self.output if item.get("type") == "message"
            for part in item.get("content", []) if part.get("type") == "output_text")


class ResponseEvent(_Model):
    """One streamed event; its fields depend on ``type`` (see the Open
    Responses spec). A terminal event's ``response`` is parsed."""

    type: str
    sequence_number: int
    response: Response | None = None


class InputItemList(_Model):
    object: str = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class ResponseDeleted(_Model):
    id: str
    object: str = "response.deleted"
    deleted: bool


class APIStatusError(Exception):
    """The server answered with an error (OpenAI error shape)."""

    def __init__(self, status_code: int, body: Any) -> None:
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        self.status_code = status_code
        self.message: str = err.get("message") or str(body)
        self.type: str | None = err.get("type")
        self.param: str | None = err.get("param")
        self.code: str | None = err.get("code")
        super().__init__(f"Error code: {status_code} - {self.message}")
