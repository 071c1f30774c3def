"""The provider contract: a small, provider-neutral request in, a stream of
provider-neutral events out.

Providers never build Responses events, ids or sequence numbers: the engine
does, so every upstream gets the full, identical event taxonomy for free and
a new provider is one module that only speaks its upstream's wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from responsa.protocol.errors import UpstreamError
from responsa.protocol.types import Item

__all__ = ["Capabilities", "Finish", "FinishReason", "HostedItem", "Item", "ModelEvent", "ModelRequest", "Provider",
           "ProviderError", "ReasoningDelta", "ReasoningDone", "RefusalDelta", "TextDelta", "ToolCallDelta",
           "ToolCallStart", "Usage"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model can do. Requests that need a missing capability are
    rejected with a 400 naming the parameter instead of silently dropped."""

    tools: bool = True
    vision: bool = True
    json_schema: bool = True
    reasoning: bool = False
    logprobs: bool = False
    tool_choice_required: bool = True
    context_window: int = 128_000
    responses_native: bool = False
    """The upstream speaks the Responses API itself, so Responses-only
    parameters (``ModelRequest.native``) and hosted tools can go through."""
    native_files: frozenset[str] = frozenset()
    """Media types the upstream reads itself from an ``input_file``'s
    ``file_data`` (``"*"``: any type, and ``file_url`` too); every other file
    reaches the model as its extracted text (``engine/file_inputs.py``)."""


@dataclass(slots=True)
class ModelRequest:
    """Everything a provider needs for one model call, already resolved:
    the context (previous turns, conversation items, new input) is a flat,
    ordered item list; ``instructions`` is the system prompt of this turn."""

    model: str
    items: list[Item]
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_output_tokens: int | None = None
    top_logprobs: int | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] = field(default_factory=list)
    user: str | None = None
    native: dict[str, Any] = field(default_factory=dict)
    """Responses-only parameters (``protocol.params.NATIVE_PARAMS``) that a
    native Responses upstream receives verbatim; other providers ignore them."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider-specific settings (e.g. the reference client's
    ``{"model": ..., "settings": {...}}`` form)."""


# --- events a provider yields -------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    logprobs: list[dict[str, Any]] | None = None
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    text: str
    kind: Literal["refusal"] = "refusal"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text (``summary=True`` for a summary rather than raw text)."""

    text: str
    summary: bool = False
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ReasoningDone:
    """Ends a reasoning item; carries opaque upstream state to round-trip."""

    encrypted_content: str | None = None
    kind: Literal["reasoning_done"] = "reasoning_done"


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A function call begins. ``index`` distinguishes parallel calls."""

    index: int
    call_id: str
    name: str
    kind: Literal["tool_call_start"] = "tool_call_start"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    arguments: str
    kind: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    kind: Literal["usage"] = "usage"


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason = "stop"
    kind: Literal["finish"] = "finish"


@dataclass(frozen=True, slots=True)
class HostedItem:
    """A finished output item of a tool the upstream itself ran (OpenAI's
    hosted tools: ``image_generation_call``, ``code_interpreter_call``...),
    passed to the client as the upstream made it."""

    item: dict[str, Any]
    kind: Literal["hosted_item"] = "hosted_item"


ModelEvent = (
    TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ReasoningDone
    | ToolCallStart
    | ToolCallDelta
    | Usage
    | Finish
    | HostedItem
)


ProviderError = UpstreamError
"""An upstream failure (``protocol.errors.UpstreamError``, part of the one
error hierarchy): 502 ``server_error`` unless mapped more precisely;
``retryable`` lets the engine fall back to the next model of a fallback
list, but only before anything was streamed to the client."""


@runtime_checkable
class Provider(Protocol):
    """One upstream family. ``stream`` must end with a ``Finish`` event (and
    should yield ``Usage`` before it) or raise ``ProviderError``."""

    name: str

    def capabilities(self, model: str) -> Capabilities: ...

    def stream(self, req: ModelRequest) -> AsyncIterator[ModelEvent]: ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...
