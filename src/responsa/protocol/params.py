"""The newer request parameters of the Responses API (``openai`` 3.x SDK)
that shape how an upstream serves a request rather than what the model
sees, with what each one does here.

Every key is validated (a typo is a 400 naming it, as for every other
parameter); then each parameter has one documented effect:

- ``client_metadata`` (Codex CLI sends it on every request: session, turn
  and window ids): stored with the request, never sent to any upstream.
- ``prompt_cache_key``, ``prompt_cache_options``, ``prompt_cache_retention``, ``image``: caching
  and image-compression hints. Forwarded verbatim to an OpenAI Responses
  upstream (``NATIVE_PARAMS``); other upstreams cache on their own terms,
  so there they change nothing. Echoed on the Response.
- ``background_options``: ``completion_window`` ``2h``/``8h`` need
  ``background: true`` and no streaming (as on OpenAI); Responsa starts
  background work at once, which meets every window. ``continuation_id`` is
  stored.
- ``context_management``: ``[{"type": "compaction", "compact_threshold"}]``
  is accepted and stored; see the README for what compaction does here.
- ``moderation`` and a Daybreak ``access_programs.cyber``: only an OpenAI
  Responses upstream can honour them (``needs_native``); with any other
  provider they are a 400 saying so, never a silent drop.
"""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid

NATIVE_PARAMS = ("prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "image", "moderation",
                 "access_programs")
"""Forwarded verbatim to an upstream that speaks the Responses API natively."""

_Spec = dict[str, tuple[str, ...] | type | tuple[type, ...]]
"""key -> allowed string values, or the JSON type(s) of the value."""

_OPTIONS: dict[str, _Spec] = {
    "prompt_cache_options": {"mode": ("implicit", "explicit"), "ttl": ("30m", "12h"), "prewarm": bool,
                             "comparison_response_id": (str, type(None))},
    "background_options": {"completion_window": ("soonest", "2h", "8h"), "continuation_id": str},
    "moderation": {"model": str, "policy": (dict, type(None))},
    "access_programs": {"cyber": ("standard", "daybreak_blue", "daybreak_red")},
    "image": {"context_compression": ("auto", "enabled", "disabled")},
}
_POLICY_SIDES = ("input", "output")


def _check(value: Any, spec: _Spec, param: str) -> None:
    if not isinstance(value, dict):
        raise invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    for key, item in value.items():
        allowed = spec.get(key)
        if allowed is None:
            raise invalid(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}", "unknown_parameter")
        if isinstance(allowed, tuple) and allowed and isinstance(allowed[0], str):
            if item not in allowed:
                raise invalid(f"Invalid value for '{param}.{key}': {item!r}. Supported values are: "
                              + ", ".join(repr(a) for a in allowed) + ".", f"{param}.{key}")
        elif not isinstance(item, allowed) or (allowed is not bool and isinstance(item, bool)):  # type: ignore[arg-type]
            raise invalid(f"Invalid type for '{param}.{key}'.", f"{param}.{key}", "invalid_type")


def check_options(value: dict[str, Any] | None, param: str) -> None:
    """Validate one of the object-valued parameters above (400 naming the key)."""
    if value is None:
        return
    if param == "client_metadata":
        # Free-form string pairs, like metadata but without its 512-character
        # value cap: Codex puts a whole JSON document in one value.
        if len(value) > 64:
            raise invalid("Invalid 'client_metadata': at most 64 keys.", param, "object_above_max_properties")
        for key, item in value.items():
            if not isinstance(item, str) or len(item) > 16_384 or len(key) > 256:
                raise invalid(f"Invalid 'client_metadata.{key[:40]}': expected a string of at most 16384 "
                              "characters.", f"{param}.{key[:40]}", "invalid_value")
        return
    _check(value, _OPTIONS[param], param)
    if param == "moderation":
        if "model" not in value:
            raise invalid("Missing required parameter: 'moderation.model'.", "moderation.model",
                          "missing_required_parameter")
        policy = value.get("policy") or {}
        for side, mode in policy.items():
            if side not in _POLICY_SIDES:
                raise invalid(f"Unknown parameter: 'moderation.policy.{side}'.", f"moderation.policy.{side}",
                              "unknown_parameter")
            if mode is not None:
                _check(mode, {"mode": ("score", "block")}, f"moderation.policy.{side}")


def check_context_management(value: list[Any] | None) -> None:
    for i, entry in enumerate(value or []):
        param = f"context_management[{i}]"
        _check(entry, {"type": str, "compact_threshold": (int, type(None))}, param)
        if entry.get("type") != "compaction":
            raise invalid(f"Invalid value for '{param}.type': {entry.get('type')!r}. Supported values are: "
                          "'compaction'.", f"{param}.type")
        threshold = entry.get("compact_threshold")
        if threshold is not None and threshold < 1:
            raise invalid(f"Invalid '{param}.compact_threshold': expected a positive integer.",
                          f"{param}.compact_threshold")


def check_background(background: bool | None, stream: bool | None, options: dict[str, Any] | None) -> None:
    window = (options or {}).get("completion_window", "soonest")
    if window != "soonest" and (not background or stream):
        raise invalid(f"'background_options.completion_window' {window!r} requires 'background': true and no "
                      "streaming.", "background_options.completion_window")


def needs_native(params: dict[str, Any]) -> str | None:
    """The first parameter of ``params`` that only an OpenAI Responses
    upstream can honour, or ``None``."""
    if params.get("moderation") is not None:
        return "moderation"
    cyber = (params.get("access_programs") or {}).get("cyber")
    if cyber not in (None, "standard"):
        return "access_programs.cyber"
    return None


def native(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters forwarded verbatim to a native Responses upstream."""
    return {k: params[k] for k in NATIVE_PARAMS if params.get(k) is not None}


__all__ = ["NATIVE_PARAMS", "check_background", "check_context_management", "check_options", "native",
           "needs_native"]
