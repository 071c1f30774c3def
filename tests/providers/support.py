"""Helpers the provider tests share: run a provider's stream to the end and
read the text out of its events."""

from __future__ import annotations

from typing import Any

from responsa.providers.base import ModelEvent, ModelRequest, Provider, TextDelta


async def collect(provider: Provider, req: ModelRequest) -> list[ModelEvent]:
    """Every event of one ``provider.stream(req)``."""
    return [ev async for ev in provider.stream(req)]


def text_of(events: list[ModelEvent]) -> str:
    """The text the events carry, joined."""
    return "".join(ev.text for ev in events if isinstance(ev, TextDelta))


def user_request(model: str, text: str, **fields: Any) -> ModelRequest:
    """A request with one plain user message."""
    return ModelRequest(model=model, items=[{"type": "message", "role": "user", "content": text}], **fields)
