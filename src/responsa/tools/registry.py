"""Every tool type the server knows, in one explicit list.

Adding a tool type is one module (see ``tools/base.py``) and one line in
``TOOL_TYPES``. Everything else is derived from the list: which
``tools[].type`` values are accepted, which input item types, which items
the event builder knows how to stream and replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from responsa.tools import (
    apply_patch,
    computer,
    custom,
    file_search,
    functions,
    hosted,
    mcp,
    namespace,
    shell,
    tool_search,
    web_search,
)
from responsa.tools.base import ItemKind, Normaliser, ToolType

TOOL_TYPES: tuple[ToolType, ...] = (
    functions.TOOL_TYPE,
    mcp.TOOL_TYPE,
    namespace.TOOL_TYPE,
    web_search.TOOL_TYPE,
    file_search.TOOL_TYPE,
    custom.TOOL_TYPE,
    shell.SHELL_TOOL_TYPE,
    shell.LOCAL_SHELL_TOOL_TYPE,
    apply_patch.TOOL_TYPE,
    computer.TOOL_TYPE,
    tool_search.TOOL_TYPE,
    hosted.TOOL_TYPE,
)


def _index() -> tuple[dict[str, ToolType], dict[str, Normaliser], dict[str, ItemKind]]:
    by_tool: dict[str, ToolType] = {}
    inputs: dict[str, Normaliser] = {}
    kinds: dict[str, ItemKind] = {}
    for tt in TOOL_TYPES:
        for name in tt.tool_types:
            assert name not in by_tool, f"tool type {name!r} registered twice"
            by_tool[name] = tt
        for itype, norm in tt.input_items.items():
            assert itype not in inputs, f"input item type {itype!r} registered twice"
            inputs[itype] = norm
        for kind in tt.item_kinds:
            assert kind.type not in kinds, f"item kind {kind.type!r} registered twice"
            kinds[kind.type] = kind
    return by_tool, inputs, kinds


_BY_TOOL, _INPUTS, _KINDS = _index()

BY_TOOL_TYPE: Mapping[str, ToolType] = MappingProxyType(_BY_TOOL)
"""``tools[].type`` -> the tool type serving it."""
INPUT_ITEMS: Mapping[str, Normaliser] = MappingProxyType(_INPUTS)
"""Input item types the tool types add to the built-in ones (``protocol.items``)."""
ITEM_KINDS: Mapping[str, ItemKind] = MappingProxyType(_KINDS)
"""Output item type -> how it streams (``EventBuilder`` and replay read this)."""


def supported_tool_types() -> str:
    """For error messages: ``'function', 'mcp'``."""
    return ", ".join(repr(t) for t in BY_TOOL_TYPE)
