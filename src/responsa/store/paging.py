"""The one pagination rule of every list endpoint (a response's input items,
a conversation's items, prompts, a prompt's versions), as OpenAI's lists
take their parameters:

- ``order`` (``asc``/``desc``) orders the list; ``after``/``before`` name an
  entry of it (by id, or by version for prompt versions) and are exclusive:
  the page holds what comes after ``after`` and before ``before`` in that order.
- ``limit`` entries at most; ``has_more`` says whether more follow the page.
- A cursor that names no entry of the list raises ``UnknownCursor``: a 400
  ``invalid_request_error`` whose ``param`` is the cursor. Never an empty 200
  page, from which a client paging through (whose cursor item was deleted
  meanwhile, or mistyped) would conclude that the list had ended.

``window`` applies it to a list already read whole (input items, prompts);
conversation items page in SQL on their positions (``operations.py``) and
raise the same ``UnknownCursor``.
"""

from __future__ import annotations

from typing import Any, Literal

from responsa.store.base import Page, UnknownCursor


def window(entries: list[dict[str, Any]], *, after: str | None, before: str | None, limit: int,
           order: Literal["asc", "desc"], key: str = "id") -> Page:
    """The page of ``entries`` (kept oldest first) that the cursors select;
    ``key`` is the field the cursors name."""
    ordered = entries[::-1] if order == "desc" else entries
    keys = [entry.get(key) for entry in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        start = _index(keys, "after", after) + 1
    if before is not None:
        end = _index(keys, "before", before)
    selected = ordered[start:end]
    return Page(selected[:limit], len(selected) > limit)


def _index(keys: list[Any], param: str, cursor: str) -> int:
    try:
        return keys.index(cursor)
    except ValueError:
        raise UnknownCursor(param, cursor) from None
