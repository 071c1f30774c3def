"""``POST /v1/responses`` request body: every parameter of the reference
method and the Open Responses spec, type-checked by pydantic, with the
semantic limits OpenAI enforces. Unknown parameters are rejected rather than
ignored so a typo never silently changes behaviour.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from responsa.protocol.errors import APIError, invalid
from responsa.protocol.items import message, normalize_input
from responsa.protocol.params import check_context_management, check_options
from responsa.protocol.types import Item

INCLUDE_VALUES = frozenset({
    "message.output_text.logprobs",
    "web_search_call.results",
    "reasoning.encrypted_content",
    "message.input_image.image_url",
    "web_search_call.action.sources",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
})
# Values a client may ask for but whose tools this server does not offer; the
# data they name can therefore never be present, so asking is harmless.
_TEXT_FORMATS = ("text", "json_object", "json_schema")
_TEXT_KEYS = frozenset({"format", "verbosity"})
_FORMAT_KEYS = frozenset({"type", "name", "schema", "strict", "description"})
_REASONING_KEYS = frozenset({"effort", "summary", "generate_summary"})


def _no_unknown(value: dict[str, Any], known: frozenset[str], param: str) -> None:
    if unknown := sorted(set(value) - known):
        raise invalid(f"Unknown parameter: '{param}.{unknown[0]}'.", f"{param}.{unknown[0]}", "unknown_parameter")


class CreateResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | dict[str, Any] | list[str | dict[str, Any]] | None = None
    input: str | list[Any] | None = None
    instructions: str | list[Any] | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    include: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = None
    text: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_output_tokens: int | None = Field(default=None, ge=16)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    background: bool | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=128)
    prompt_cache_key: str | None = Field(default=None, max_length=64)
    # Parameters of the current API that only shape how an upstream serves the
    # request; their effect per provider family is in protocol/params.py.
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    background_options: dict[str, Any] | None = None
    context_management: list[Any] | None = None
    moderation: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    client_metadata: dict[str, str] | None = None
    prompt: dict[str, Any] | None = None
    mcp_servers: str | dict[str, Any] | list[Any] | None = None
    credentials: dict[str, Any] | list[Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        check_metadata(v, "metadata")
        return v

    @field_validator("prompt_cache_options", "background_options", "moderation", "access_programs", "image",
                     "client_metadata")
    @classmethod
    def _options(cls, v: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        check_options(v, info.field_name or "")
        return v

    @field_validator("context_management")
    @classmethod
    def _context_management(cls, v: list[Any] | None) -> list[Any] | None:
        check_context_management(v)
        return v

    @field_validator("include")
    @classmethod
    def _include(cls, v: list[str] | None) -> list[str] | None:
        for i, value in enumerate(v or []):
            if value not in INCLUDE_VALUES:
                raise APIError(
                    f"Invalid value: {value!r}. Supported values are: "
                    + ", ".join(repr(x) for x in sorted(INCLUDE_VALUES)) + ".", param=f"include[{i}]",
                    code="invalid_value")
        return v

    @field_validator("text")
    @classmethod
    def _text(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if not v:
            return v
        _no_unknown(v, _TEXT_KEYS, "text")
        fmt = v.get("format")
        if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in _TEXT_FORMATS):
            raise invalid("Invalid value for 'text.format.type': supported values are 'text', "
                          "'json_object' and 'json_schema'.", "text.format.type")
        if fmt is not None:
            _no_unknown(fmt, _FORMAT_KEYS if fmt["type"] == "json_schema" else frozenset({"type"}), "text.format")
        if fmt is not None and fmt["type"] == "json_schema":
            if not isinstance(fmt.get("name"), str) or not fmt["name"]:
                raise invalid("Missing required parameter: 'text.format.name'.", "text.format.name",
                              "missing_required_parameter")
            if not isinstance(fmt.get("schema"), dict):
                raise invalid("Missing required parameter: 'text.format.schema' (a JSON schema object).",
                              "text.format.schema", "missing_required_parameter")
            if not isinstance(fmt.get("strict", False), bool | None):
                raise invalid("Invalid type for 'text.format.strict': expected a boolean.", "text.format.strict",
                              "invalid_type")
            if not isinstance(fmt.get("description", ""), str | None):
                raise invalid("Invalid type for 'text.format.description': expected a string.",
                              "text.format.description", "invalid_type")
        verbosity = v.get("verbosity")
        if verbosity is not None and verbosity not in ("low", "medium", "high"):
            raise invalid("Invalid value for 'text.verbosity': supported values are 'low', 'medium' "
                          "and 'high'.", "text.verbosity")
        return v

    @field_validator("reasoning")
    @classmethod
    def _reasoning(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if not v:
            return v
        _no_unknown(v, _REASONING_KEYS, "reasoning")
        effort = v.get("effort")
        if effort is not None and effort not in ("none", "minimal", "low", "medium", "high", "xhigh"):
            raise invalid(f"Invalid value for 'reasoning.effort': {effort!r}. Supported values are: "
                          "'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.", "reasoning.effort")
        summary = v.get("summary", v.get("generate_summary"))
        if summary is not None and summary not in ("auto", "concise", "detailed"):
            raise invalid(f"Invalid value for 'reasoning.summary': {summary!r}. Supported values are: "
                          "'auto', 'concise' and 'detailed'.", "reasoning.summary")
        return v

    @field_validator("stream_options")
    @classmethod
    def _stream_options(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, value in (v or {}).items():
            if key != "include_obfuscation":
                raise invalid(f"Unknown parameter: 'stream_options.{key}'.", f"stream_options.{key}",
                              "unknown_parameter")
            if not isinstance(value, bool):
                raise invalid("Invalid type for 'stream_options.include_obfuscation': expected a "
                              "boolean.", "stream_options.include_obfuscation", "invalid_type")
        return v


MAX_INT = 2**63 - 1
"""The largest integer a store column (BIGINT) holds."""


def whole_number(text: str) -> int | None:
    """``text`` as an integer 0..MAX_INT written in ASCII digits, else ``None``.
    (``str.isdigit`` alone lets '²' through, which ``int`` then rejects.)"""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    n = int(text)
    return n if n <= MAX_INT else None


def check_metadata(v: Any, param: str) -> None:
    if v is None:
        return
    if len(v) > 16:
        raise invalid(f"Invalid '{param}': too many properties. Expected an object with at most 16 "
                      f"properties, but got {len(v)} instead.", param, "object_above_max_properties")
    for key, value in v.items():
        if len(key) > 64:
            raise invalid(f"Invalid '{param}': key {key[:20]!r}... is longer than 64 characters.",
                          f"{param}.{key[:20]}", "string_above_max_length")
        if not isinstance(value, str):
            raise invalid(f"Invalid type for '{param}.{key}': expected a string.", f"{param}.{key}",
                          "invalid_type")
        if len(value) > 512:
            raise invalid(f"Invalid '{param}.{key}': string too long. Expected a string with maximum "
                          f"length 512, but got a string with length {len(value)} instead.",
                          f"{param}.{key}", "string_above_max_length")


def check_metadata_param(raw: Any) -> dict[str, str]:
    """A route's ``metadata`` parameter, absent meaning none: the routes that
    take it as raw JSON (conversations, vector stores) check it here, so the
    object-type check sits with the one metadata rule."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid type for 'metadata': expected an object.", "metadata", "invalid_type")
    check_metadata(raw, "metadata")
    return raw


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[any]", "dict[str,any]", "int", "float", "bool", "literal") or \
                part.startswith(("list[", "dict[", "function-", "literal[")):
            continue  # pydantic's union-branch labels are noise to a client
        else:
            out += f".{part}" if out else part
    return out


def parse_create(body: Any) -> CreateResponse:
    """Validate a decoded JSON body; every failure is an ``APIError`` (400)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    try:
        return CreateResponse.model_validate(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        param = _loc(err["loc"])
        if err["type"] == "extra_forbidden":
            raise invalid(f"Unknown parameter: '{param}'.", param, "unknown_parameter") from None
        raise invalid(f"Invalid value for '{param}': {err['msg']}.", param,
                      "invalid_type" if "type" in err["type"] else "invalid_value") from None


def instructions_text(req: CreateResponse) -> tuple[str | None, list[Item]]:
    """Instructions as a string (for the Response object and providers) and
    as items (when given as a message list, which the spec allows)."""
    ins = req.instructions
    if ins is None or isinstance(ins, str):
        return ins, []
    items = normalize_input(ins, "instructions")
    text = "\n\n".join(
        "".join(p.get("text", "") for p in it.get("content", []) if isinstance(p, dict))
        for it in items if it["type"] == "message")
    return text, items


__all__ = ["MAX_INT", "CreateResponse", "check_metadata", "check_metadata_param", "instructions_text", "message",
           "parse_create", "whole_number"]
