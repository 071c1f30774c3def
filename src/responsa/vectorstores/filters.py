"""File attributes and the search ``filters`` over them (OpenAI's
``ComparisonFilter`` / ``CompoundFilter``), validated and evaluated here
and only here, so SQLite and PostgreSQL cannot disagree on what a filter
keeps: the store reads the searched files' attributes and this module
decides which files a search may return.

Semantics: ``eq``/``ne`` compare values of the same JSON type (a number
and a string are never equal; ``1`` equals ``1.0``); ``gt``/``gte``/``lt``/
``lte`` compare numbers with numbers and strings with strings (by code
point), and are false otherwise; ``in``/``nin`` test membership in a list
of strings and numbers. A comparison on an attribute the file does not
have is false, so its negations (``ne``, ``nin``) are true.
"""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid

Attributes = dict[str, str | float | bool]
Filter = dict[str, Any]

MAX_ATTRIBUTES = 16
MAX_KEY = 64
MAX_STRING = 512
MAX_FILTERS = 64
"""Comparisons in one filter tree (its cost is per file searched)."""
MAX_DEPTH = 8
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_LIST = 100


def check_attributes(raw: Any, param: str = "attributes") -> Attributes:
    """Up to 16 pairs, keys of up to 64 characters, values strings (up to
    512), numbers or booleans, as OpenAI allows; ``None`` is no attributes."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    if len(raw) > MAX_ATTRIBUTES:
        raise invalid(f"Invalid '{param}': at most {MAX_ATTRIBUTES} attributes, got {len(raw)}.", param,
                      "object_above_max_properties")
    for key, value in raw.items():
        if len(key) > MAX_KEY:
            raise invalid(f"Invalid '{param}': keys have at most {MAX_KEY} characters.", param, "invalid_value")
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise invalid(f"Invalid '{param}.{key}': strings have at most {MAX_STRING} characters.",
                              f"{param}.{key}", "string_above_max_length")
        elif not isinstance(value, int | float) or value != value:  # bool is an int; NaN never compares
            raise invalid(f"Invalid type for '{param}.{key}': expected a string, number or boolean.",
                          f"{param}.{key}", "invalid_type")
    return raw


def check_filter(raw: Any, param: str = "filters") -> Filter:
    """The filter tree, validated (a 400 naming the exact parameter)."""
    count = [0]
    _check(raw, param, 0, count)
    return raw  # type: ignore[no-any-return]


def _check(node: Any, param: str, depth: int, count: list[int]) -> None:
    if not isinstance(node, dict):
        raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    kind = node.get("type")
    if kind in COMPOUNDS:
        _keys(node, {"type", "filters"}, param)
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise invalid(f"Invalid '{param}.filters': expected a non-empty array of filters.", f"{param}.filters",
                          "invalid_type")
        if depth >= MAX_DEPTH:
            raise invalid(f"Invalid '{param}': filters nest at most {MAX_DEPTH} levels.", param, "invalid_value")
        for i, child in enumerate(children):
            _check(child, f"{param}.filters[{i}]", depth + 1, count)
        return
    if kind not in COMPARISONS:
        raise invalid(f"Invalid value for '{param}.type': {kind!r}. Supported values are: "
                      + ", ".join(repr(k) for k in (*COMPARISONS, *COMPOUNDS)) + ".", f"{param}.type")
    _keys(node, {"type", "key", "value"}, param)
    count[0] += 1
    if count[0] > MAX_FILTERS:
        raise invalid(f"Invalid 'filters': at most {MAX_FILTERS} comparisons.", "filters", "invalid_value")
    if not isinstance(node.get("key"), str):
        raise invalid(f"Missing required parameter: '{param}.key'.", f"{param}.key", "missing_required_parameter")
    if "value" not in node:
        raise invalid(f"Missing required parameter: '{param}.value'.", f"{param}.value",
                      "missing_required_parameter")
    value = node["value"]
    if kind in ("in", "nin"):
        ok = (isinstance(value, list) and len(value) <= MAX_LIST
              and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value))
        if not ok:
            raise invalid(f"Invalid '{param}.value': '{kind}' takes an array of at most {MAX_LIST} strings or "
                          "numbers.", f"{param}.value", "invalid_type")
    elif not isinstance(value, str | int | float) or value != value:
        raise invalid(f"Invalid type for '{param}.value': expected a string, number or boolean.", f"{param}.value",
                      "invalid_type")


def _keys(node: dict[str, Any], allowed: set[str], param: str) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise invalid(f"Unknown parameter: '{param}.{extra[0]}'.", f"{param}.{extra[0]}", "unknown_parameter")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def keeps(node: Filter, attributes: Attributes) -> bool:
    """Whether a file with ``attributes`` passes the (validated) filter."""
    kind = node["type"]
    if kind == "and":
        return all(keeps(child, attributes) for child in node["filters"])
    if kind == "or":
        return any(keeps(child, attributes) for child in node["filters"])
    key, value = node["key"], node["value"]
    present = key in attributes
    have = attributes.get(key)
    if kind == "eq":
        return present and _equal(have, value)
    if kind == "ne":
        return not (present and _equal(have, value))
    if kind in ("in", "nin"):
        member = present and any(_equal(have, v) for v in value)
        return member if kind == "in" else not member
    if not present or _kind(have) != _kind(value) or _kind(value) not in ("number", "string"):
        return False
    if kind == "gt":
        return bool(have > value)
    if kind == "gte":
        return bool(have >= value)
    if kind == "lt":
        return bool(have < value)
    return bool(have <= value)
