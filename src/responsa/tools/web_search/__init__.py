"""``web_search``: Responsa searches the web itself, for every provider.

The model sees a ``web_search(query)`` function; its call becomes a
``web_search_call`` item (``action: {"type": "search", "query", "sources"}``)
that the server runs against the configured backend (``backends.py``:
SearXNG, Brave or Tavily), streaming ``response.web_search_call.in_progress``,
``.searching`` and ``.completed``. The results go back to the model, and
URLs of those results that the answer quotes become ``url_citation``
annotations on its text. ``action.sources`` is kept in the store but shown
only with ``include: ["web_search_call.action.sources"]``, as on OpenAI.

With no backend configured (or ``external_web_access: false``) the tool is
still accepted, so clients that always send it (Codex) keep working
offline: a search the model makes ends as a ``failed`` ``web_search_call``
and the model is told that search is unavailable, and why.
"""

from __future__ import annotations

from responsa.tools.web_search.toolset import TOOL_TYPE, WEB_SEARCH_CALL

__all__ = ["TOOL_TYPE", "WEB_SEARCH_CALL"]
