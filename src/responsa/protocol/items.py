"""Input items: validated and normalised into the canonical item JSON that
the store keeps, ``input_items`` lists and providers read.

Hand-written rather than a pydantic union because the error must name the
exact offending path (``input[2].content[0].image_url``) the way OpenAI
does, and because items are the hot path of every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from responsa.protocol.errors import invalid
from responsa.protocol.ids import new_id
from responsa.protocol.types import Item

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS = ("output_text", "refusal")
_IMAGE_DETAIL = ("auto", "low", "high")
_STATUSES = ("in_progress", "completed", "incomplete")
PART_FIELDS = MappingProxyType({"message": "content", "function_call_output": "output",
                                "custom_tool_call_output": "output"})
"""Where an item holds content parts: a message's ``content``, a tool
output's ``output`` when it is a list (a tool may return an image or a file)."""


def _str(value: Any, param: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid type for '{param}': expected a string, but got {_kind(value)}.", param,
                      "invalid_type")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _status(raw: dict[str, Any], param: str) -> str:
    status = raw.get("status")
    if status is None:
        return "completed"
    if status not in _STATUSES:
        raise invalid(f"Invalid value for '{param}.status': {status!r}. Supported values are: 'in_progress', "
                      "'completed' and 'incomplete'.", f"{param}.status")
    return str(status)


def _item_id(raw: dict[str, Any], param: str, prefix: str) -> str:
    """A client-given id (it becomes a stored key, so only a string will do) or a fresh one."""
    return _str(raw.get("id"), f"{param}.id", optional=True) or new_id(prefix)


def _text_parts(value: Any, param: str, ptype: str) -> list[dict[str, Any]]:
    """A reasoning item's ``summary`` / ``content``: ``[{"type": ptype, "text": str}]``."""
    if not isinstance(value, list):
        raise invalid(f"Invalid type for '{param}': expected an array, but got {_kind(value)}.", param,
                      "invalid_type")
    for i, raw in enumerate(value):
        part = _obj(raw, f"{param}[{i}]")
        if part.get("type", ptype) != ptype:
            raise invalid(f"Invalid value for '{param}[{i}].type': {part.get('type')!r}. Expected '{ptype}'.",
                          f"{param}[{i}].type")
        _str(part.get("text"), f"{param}[{i}].text")
    return value


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Invalid type for '{param}': expected an object, but got {_kind(value)}.", param,
                      "invalid_type")
    return value


def _part(raw: Any, param: str, role: str) -> dict[str, Any]:
    part = _obj(raw, param)
    ptype = part.get("type")
    allowed: tuple[str, ...] = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
    if role == "assistant" and ptype in _INPUT_PARTS:
        allowed = _ASSISTANT_PARTS + _INPUT_PARTS  # clients replay assistant text as input_text
    if ptype not in allowed:
        raise invalid(
            f"Invalid value for '{param}.type': {ptype!r}. Supported values for role '{role}' are: "
            + ", ".join(repr(a) for a in allowed) + ".", f"{param}.type")
    if ptype in ("input_text", "output_text"):
        out: dict[str, Any] = {"type": ptype, "text": _str(part.get("text"), f"{param}.text")}
        if ptype == "output_text":
            out["annotations"] = part.get("annotations") or []
            if part.get("logprobs"):
                out["logprobs"] = part["logprobs"]
        return out
    if ptype == "refusal":
        return {"type": "refusal", "refusal": _str(part.get("refusal"), f"{param}.refusal")}
    if ptype == "input_image":
        url = _str(part.get("image_url"), f"{param}.image_url", optional=True)
        file_id = _str(part.get("file_id"), f"{param}.file_id", optional=True)
        if not url and not file_id:
            raise invalid(f"Missing required parameter: '{param}.image_url'.", f"{param}.image_url",
                          "missing_required_parameter")
        detail = part.get("detail", "auto")
        if detail not in _IMAGE_DETAIL:
            raise invalid(f"Invalid value for '{param}.detail': {detail!r}. Supported values are: "
                          "'auto', 'low' and 'high'.", f"{param}.detail")
        image: dict[str, Any] = {"type": "input_image", "image_url": url, "detail": detail}
        if file_id and not url:  # an uploaded image (engine/file_inputs.py turns it into a data URL)
            image["file_id"] = file_id
        return image
    # input_file: exactly one of file_id / file_data / file_url (engine/file_inputs.py reads it)
    out = {"type": "input_file"}
    for key in ("file_id", "filename", "file_data", "file_url"):
        if part.get(key) is not None:
            out[key] = _str(part[key], f"{param}.{key}")
    given = [key for key in ("file_id", "file_data", "file_url") if out.get(key)]
    if not given:
        raise invalid(f"Missing required parameter: '{param}.file_id' (or 'file_data' or 'file_url').",
                      f"{param}.file_id", "missing_required_parameter")
    if len(given) > 1:
        raise invalid(f"Give one of 'file_id', 'file_data' and 'file_url' in '{param}', not "
                      + " and ".join(repr(g) for g in given) + ".", f"{param}.{given[1]}")
    return out


def content_part(raw: Any, param: str, role: str = "user") -> dict[str, Any]:
    """One validated content part (prompt variables supply parts on their own)."""
    return _part(raw, param, role)


def message(role: str, content: Any, param: str, *, item_id: str | None = None,
            status: str = "completed") -> Item:
    if role not in MESSAGE_ROLES:
        raise invalid(f"Invalid value for '{param}.role': {role!r}. Supported values are: "
                      "'user', 'assistant', 'system' and 'developer'.", f"{param}.role")
    if isinstance(content, str):
        part: dict[str, Any] = {"type": "output_text" if role == "assistant" else "input_text", "text": content}
        if role == "assistant":
            part["annotations"] = []
        parts = [part]
    elif isinstance(content, list):
        parts = [_part(p, f"{param}.content[{i}]", role) for i, p in enumerate(content)]
    else:
        raise invalid(f"Invalid type for '{param}.content': expected a string or an array of content "
                      f"parts, but got {_kind(content)}.", f"{param}.content", "invalid_type")
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": role,
            "content": parts}


def _function_call(raw: dict[str, Any], param: str) -> Item:
    args = raw.get("arguments")
    return {
        "type": "function_call",
        "id": _item_id(raw, param, "fc"),
        "call_id": _str(raw.get("call_id"), f"{param}.call_id"),
        "name": _str(raw.get("name"), f"{param}.name"),
        "arguments": _str(args, f"{param}.arguments"),
        "status": _status(raw, param),
    }


def _function_call_output(raw: dict[str, Any], param: str) -> Item:
    output = raw.get("output")
    if isinstance(output, list):
        output = [_part(p, f"{param}.output[{i}]", "user") for i, p in enumerate(output)]
    elif not isinstance(output, str):
        raise invalid(f"Invalid type for '{param}.output': expected a string or an array of content "
                      f"parts, but got {_kind(output)}.", f"{param}.output", "invalid_type")
    return {
        "type": "function_call_output",
        "id": _item_id(raw, param, "fco"),
        "call_id": _str(raw.get("call_id"), f"{param}.call_id"),
        "output": output,
        "status": _status(raw, param),
    }


def _reasoning(raw: dict[str, Any], param: str) -> Item:
    summary = _text_parts(raw.get("summary", []), f"{param}.summary", "summary_text")
    out: Item = {"type": "reasoning", "id": _item_id(raw, param, "rs"), "summary": summary}
    content = raw.get("content")
    if content is not None and _text_parts(content, f"{param}.content", "reasoning_text"):
        out["content"] = content
    if raw.get("encrypted_content") is not None:
        out["encrypted_content"] = _str(raw["encrypted_content"], f"{param}.encrypted_content")
    return out


def _compaction(raw: dict[str, Any], param: str) -> Item:
    return {"type": "compaction", "id": _item_id(raw, param, "cmp"),
            "encrypted_content": _str(raw.get("encrypted_content"), f"{param}.encrypted_content")}


Normaliser = Callable[[dict[str, Any], str], Item]
NO_EXTRA: Mapping[str, Normaliser] = MappingProxyType({})


def normalize_item(raw: Any, param: str, extra: Mapping[str, Normaliser] = NO_EXTRA) -> Item:
    """One input item. ``extra``: the item types tool types add
    (``tools.registry.INPUT_ITEMS``), passed in by the caller that accepts
    them, so this module never depends on which tool types exist."""
    item = _obj(raw, param)
    itype = item.get("type")
    if itype is None and "role" in item:
        itype = "message"
    if itype == "message":
        role = _str(item.get("role"), f"{param}.role") or ""
        return message(role, item.get("content"), param, item_id=_item_id(item, param, "msg"),
                       status=_status(item, param))
    if itype == "function_call":
        return _function_call(item, param)
    if itype == "function_call_output":
        return _function_call_output(item, param)
    if itype == "reasoning":
        return _reasoning(item, param)
    if itype == "compaction":
        return _compaction(item, param)
    if itype == "item_reference":
        return {"type": "item_reference", "id": _str(item.get("id"), f"{param}.id")}
    if itype == "compaction_trigger":  # compact the context now (engine.context); must come last
        return {"type": "compaction_trigger", "id": _item_id(item, param, "cmpt")}
    if isinstance(itype, str) and itype in extra:
        return extra[itype](item, param)
    raise invalid(f"Invalid value for '{param}.type': {itype!r} is not a supported input item type.",
                  f"{param}.type")


def normalize_input(value: Any, param: str = "input", extra: Mapping[str, Normaliser] = NO_EXTRA) -> list[Item]:
    if value is None:
        return []
    if isinstance(value, str):
        return [message("user", value, f"{param}")]
    if not isinstance(value, list):
        raise invalid(f"Invalid type for '{param}': expected a string or an array of input items, but "
                      f"got {_kind(value)}.", param, "invalid_type")
    return [normalize_item(raw, f"{param}[{i}]", extra) for i, raw in enumerate(value)]


def text_of(item: Item) -> str:
    """Plain text of a message item (for tokens counts and simple providers)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    out = []
    for part in content or []:
        if isinstance(part, dict):
            out.append(part.get("text") or part.get("refusal") or "")
    return "".join(out)
