"""Client-executed function tools (``tools: [{"type": "function", ...}]``):
their validation, the ``function_call`` item kind, and what the engine
checks on the model's side of the contract.

Providers are asked to honour ``tool_choice`` and ``strict`` schemas, but a
provider may not be able to (or may not comply), so the engine verifies the
calls a model step produced and fails the response with a clear error
instead of handing the client a call it did not allow or arguments its
schema rejects.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from referencing.exceptions import Unresolvable

from responsa.protocol.errors import UpstreamError, invalid
from responsa.providers.base import ModelRequest
from responsa.tools.base import ItemKind, ToolType

_PROBES: tuple[Any, ...] = (None, {}, [], "", 0, True)
"""Instances of every JSON type: a ``$ref`` that resolves nowhere or loops
without consuming input breaks validation of (nearly) any of them."""


def check_schema(schema: dict[str, Any], param: str) -> None:
    """A ``strict`` schema must itself be valid, or no arguments could be checked."""
    try:
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        for probe in _PROBES:
            validator.is_valid(probe)
    except SchemaError as exc:
        raise invalid(f"Invalid JSON schema in '{param}': {exc.message}.", param, "invalid_schema") from None
    except Unresolvable as exc:
        raise invalid(f"Invalid JSON schema in '{param}': unresolvable reference ({exc}).", param,
                      "invalid_schema") from None
    except RecursionError:
        raise invalid(f"Invalid JSON schema in '{param}': its references loop without end.", param,
                      "invalid_schema") from None


@functools.lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(schema_json))


def _strict_error(tool: dict[str, Any], arguments: str) -> str | None:
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return f"The model called '{tool['name']}' with arguments that are not valid JSON."
    schema = tool.get("parameters") or {"type": "object", "properties": {}}
    try:
        error = next(iter(_validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).iter_errors(args)), None)
    except (Unresolvable, RecursionError):  # a reference the up-front probes did not reach
        return f"The strict schema of '{tool['name']}' cannot check these arguments: its references do not resolve."
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return (f"The model called '{tool['name']}' with arguments that do not match its strict schema: "
            f"{error.message} at {where}.")


def _routed(call: dict[str, Any]) -> bool:
    """A call a client-executed tool type made from a function the model saw
    (``shell_call``, a namespace member...): it satisfies a forced choice of
    that function, which the item no longer names."""
    return call["type"] not in ("function_call", "mcp_call", "mcp_approval_request") or bool(call.get("namespace"))


def check_calls(request: ModelRequest, calls: list[dict[str, Any]], *, forced: bool) -> None:
    """Fail the response (``invalid_tool_call``) when the tool calls one
    model step made (``function_call`` items and the items of calls routed
    to toolsets) break the request's contract. ``forced``: whether
    ``tool_choice`` applied to this step (only the first step of a response)."""
    problem = _call_problem(request, calls, forced=forced)
    if problem is not None:
        raise UpstreamError(problem, code="invalid_tool_call", retryable=False)


def _call_problem(request: ModelRequest, calls: list[dict[str, Any]], *, forced: bool) -> str | None:
    functions = {t["name"]: t for t in request.tools if t.get("type") == "function"}
    for call in calls:
        if call["type"] != "function_call" or call.get("namespace"):
            continue  # routed to a toolset, which made the name (a namespace member)
        tool = functions.get(call["name"])
        if tool is None:
            return f"The model called '{call['name']}', which is not one of the request's tools."
        if tool.get("strict"):
            problem = _strict_error(tool, call["arguments"])
            if problem:
                return problem
    if not forced:
        return None
    choice = request.tool_choice
    if choice == "none" and calls:
        return "The model called a tool although 'tool_choice' is 'none'."
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        names = {t["name"] for t in choice["tools"]}
        outside = [c["name"] for c in calls if c["type"] == "function_call" and c["name"] not in names
                   and not c.get("namespace")]
        if outside:
            return f"The model called '{outside[0]}', which 'tool_choice.tools' does not allow."
        if choice.get("mode") == "required" and not calls:
            return "The model did not call a tool although 'tool_choice.mode' is 'required'."
    if choice == "required" and not calls:
        return "The model did not call a tool although 'tool_choice' is 'required'."
    if isinstance(choice, dict) and choice.get("type") == "function" and \
            not any((c["type"] == "function_call" and c["name"] == choice["name"]) or _routed(c) for c in calls):
        return f"The model did not call '{choice['name']}' although 'tool_choice' requires it."
    return None


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})

FUNCTION_CALL = ItemKind(
    "function_call", "fc", call_id=True, stream="arguments", delta="response.function_call_arguments.delta",
    done="response.function_call_arguments.done", done_fields=("name",))
"""A call the client runs: its ``function_call_output`` comes back as input."""


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    """One ``{"type": "function"}`` entry of ``tools``, as echoed and sent to providers."""
    name = tool.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise invalid(f"Invalid '{param}.name': must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'.",
                      f"{param}.name")
    params = tool.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise invalid(f"Invalid type for '{param}.parameters': expected a JSON schema object.",
                      f"{param}.parameters", "invalid_type")
    strict = tool.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid(f"Invalid type for '{param}.strict': expected a boolean.", f"{param}.strict", "invalid_type")
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid(f"Invalid type for '{param}.description': expected a string.", f"{param}.description",
                      "invalid_type")
    unknown = set(tool) - _TOOL_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise invalid(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}", "unknown_parameter")
    if strict and params is not None:
        check_schema(params, f"{param}.parameters")
    return {"type": "function", "name": name, "description": description, "parameters": params, "strict": strict}


TOOL_TYPE = ToolType(name="function", tool_types=("function",), parse_tool=parse_tool, item_kinds=(FUNCTION_CALL,))
