"""Reusable prompt templates: one validator for templates (the CRUD API and
the ``prompts_dir`` seed files share it) and the request-time rendering of a
``prompt`` parameter into instructions and input items.

Placeholders are ``{{name}}``. A variable is a string or a content part:
``input_text`` contributes its text; ``input_image``/``input_file`` replace
the placeholder inside a message's content (the surrounding text stays as
text parts around it), so one template can take a question as text and a
document as a file. Images and files cannot go into ``instructions``,
which are plain text.
"""

from __future__ import annotations

import json
import logging
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from responsa.protocol.errors import ResponsaError, invalid, not_found
from responsa.protocol.items import content_part, normalize_input
from responsa.protocol.request import MAX_INT, check_metadata, whole_number
from responsa.protocol.types import Item
from responsa.store.base import Store

log = logging.getLogger("responsa.prompts")

SERVER = ""
"""The tenant that owns prompts seeded from ``prompts_dir`` (every tenant reads them, none changes them)."""
PROMPT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_COMPARED = ("instructions", "input", "model", "metadata")

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_TEXT_PARTS = ("input_text", "output_text")
_TEMPLATE_KEYS = frozenset({"id", "instructions", "input", "model", "metadata"})
_PARAM_KEYS = frozenset({"id", "version", "variables"})

Value = str | dict[str, Any]


@dataclass(slots=True)
class Resolved:
    """A ``prompt`` parameter rendered for one request."""

    instructions: str | None
    items: list[Item]
    model: str | None
    echo: dict[str, Any]
    """What the Response reports as ``prompt``: the resolved version."""


def _texts(instructions: str | None, items: list[Item]) -> list[str]:
    texts = [instructions] if instructions else []
    for item in items:
        if item["type"] == "message":
            texts += [p["text"] for p in item["content"] if p["type"] in _TEXT_PARTS]
    return texts


def template(body: Any, prompt_id: str) -> dict[str, Any]:
    """The prompt object (without ``version``) described by ``body``."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    if unknown := sorted(set(body) - _TEMPLATE_KEYS):
        raise invalid(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("Invalid type for 'instructions': expected a string.", "instructions", "invalid_type")
    items = normalize_input(body.get("input"), "input")
    for i, item in enumerate(items):
        if item["type"] == "item_reference":
            raise invalid("A prompt template cannot hold item references: give the item itself.",
                          f"input[{i}]", "unsupported_value")
        del item["id"]  # every rendering gets fresh item ids
    if not instructions and not items:
        raise invalid("A prompt needs 'instructions', 'input' or both.", "instructions", "missing_required_parameter")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise invalid("Invalid type for 'model': expected a model name.", "model", "invalid_type")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("Invalid type for 'metadata': expected an object.", "metadata", "invalid_type")
    check_metadata(metadata, "metadata")
    variables = sorted({m for text in _texts(instructions, items) for m in _VAR.findall(text)})
    return {"id": prompt_id, "object": "prompt", "created_at": int(time.time()), "instructions": instructions,
            "input": items, "model": model, "metadata": metadata, "variables": variables}


def _param(raw: dict[str, Any]) -> tuple[str, int | None, dict[str, Any]]:
    if unknown := sorted(set(raw) - _PARAM_KEYS):
        raise invalid(f"Unknown parameter: 'prompt.{unknown[0]}'.", f"prompt.{unknown[0]}", "unknown_parameter")
    pid = raw.get("id")
    if not isinstance(pid, str) or not pid:
        raise invalid("Missing required parameter: 'prompt.id'.", "prompt.id", "missing_required_parameter")
    version = raw.get("version")
    if isinstance(version, str) and whole_number(version) is not None:
        version = whole_number(version)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                or not 1 <= version <= MAX_INT):
        raise invalid("Invalid 'prompt.version': expected a version number such as \"2\".", "prompt.version")
    variables = raw.get("variables") or {}
    if not isinstance(variables, dict):
        raise invalid("Invalid type for 'prompt.variables': expected an object.", "prompt.variables", "invalid_type")
    return pid, version, variables


def _value(raw: Any, param: str) -> Value:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict):
        raise invalid(f"Invalid type for '{param}': expected a string or an input_text, input_image or "
                      "input_file object.", param, "invalid_type")
    return content_part(raw, param)


def _text(value: Value) -> str | None:
    """The text a variable contributes, or ``None`` for an image or file."""
    if isinstance(value, str):
        return value
    return str(value["text"]) if value["type"] == "input_text" else None


def _fill(text: str, values: dict[str, Value], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        text = _text(value)
        if text is None:
            assert isinstance(value, dict)
            raise invalid(f"Prompt variable {match.group(1)!r} is {value['type']}, which cannot be used in "
                          f"{where}: only inside input messages.", f"prompt.variables.{match.group(1)}")
        return text

    return _VAR.sub(one, text)


def _fill_part(part: dict[str, Any], values: dict[str, Value]) -> list[dict[str, Any]]:
    """A text part with its placeholders filled; split around image/file variables."""
    if part["type"] not in _TEXT_PARTS:
        return [part]
    out: list[dict[str, Any]] = []
    text, last = "", 0
    for match in _VAR.finditer(part["text"]):
        text += part["text"][last:match.start()]
        last = match.end()
        value = values[match.group(1)]
        filled = _text(value)
        if filled is not None:
            text += filled
            continue
        assert isinstance(value, dict)  # an image or a file: a part of its own
        if text:
            out.append({**part, "text": text})
        out.append(value)
        text = ""
    text += part["text"][last:]
    if text or not out:
        out.append({**part, "text": text})
    return out


def render(prompt: dict[str, Any], values: dict[str, Value]) -> tuple[str | None, list[Item]]:
    needed = set(prompt["variables"])
    if missing := sorted(needed - set(values)):
        name = missing[0]
        raise invalid(f"Missing prompt variable {name!r}: prompt {prompt['id']!r} version {prompt['version']} "
                      f"needs {sorted(needed)}.", f"prompt.variables.{name}", "missing_required_parameter")
    if unknown := sorted(set(values) - needed):
        name = unknown[0]
        raise invalid(f"Unknown prompt variable {name!r}: prompt {prompt['id']!r} version {prompt['version']} "
                      f"takes {sorted(needed) or 'no variables'}.", f"prompt.variables.{name}", "unknown_parameter")
    instructions = prompt["instructions"]
    if instructions:
        instructions = _fill(instructions, values, "instructions")
    items = []
    for item in prompt["input"]:
        if item["type"] == "message":
            item = {**item, "content": [p for part in item["content"] for p in _fill_part(part, values)]}
        items.append(item)
    return instructions, normalize_input(items, "prompt")


async def resolve(raw: dict[str, Any], *, tenant: str, store: Store) -> Resolved:
    """The request's ``prompt`` parameter, loaded and rendered (one store read)."""
    pid, version, given = _param(raw)
    prompt = await store.get_prompt(tenant, pid, version)
    if prompt is None:
        if version is not None and await store.get_prompt(tenant, pid) is not None:
            raise not_found(f"Prompt {pid!r} has no version {version}.", "prompt.version", "prompt_version_not_found")
        raise not_found(f"Prompt with id {pid!r} not found.", "prompt.id", "prompt_not_found")
    values = {name: _value(value, f"prompt.variables.{name}") for name, value in given.items()}
    instructions, items = render(prompt, values)
    echo = {"id": pid, "version": prompt["version"], "variables": values or None}
    return Resolved(instructions=instructions, items=items, model=prompt.get("model"), echo=echo)


def _read(path: Path) -> dict[str, Any]:
    data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"prompt file {path} must hold an object")
    return data


async def seed(store: Store, directory: str) -> None:
    """Load ``*.toml``/``*.json`` prompt files (``id`` defaults to the file
    name). A file whose content differs from the stored latest version adds
    a version; an unchanged one adds nothing, so restarts are idempotent. A
    broken file stops start-up: serving without a prompt clients rely on
    would only fail later and less clearly."""
    folder = Path(directory)
    if not folder.is_dir():
        raise RuntimeError(f"prompts_dir {directory!r} is not a directory")
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".toml", ".json")):
        try:
            data = _read(path)
            pid = data.get("id", path.stem)
            if not isinstance(pid, str) or not PROMPT_ID.match(pid):
                raise invalid(f"invalid prompt id {pid!r}", "id")
            prompt = template(data, pid)
        except (ValueError, ResponsaError) as exc:
            raise RuntimeError(f"prompt file {path}: {exc}") from None
        latest = await store.get_prompt(SERVER, pid)
        if latest is None:
            await store.create_prompt(SERVER, prompt)
        elif any(latest.get(k) != prompt[k] for k in _COMPARED):
            added = await store.add_prompt_version(SERVER, prompt)
            log.info("prompt %s: %s changed, now version %s", pid, path.name, added and added["version"])
