"""The ``web_search`` tool type: entry validation, the item kind, the toolset."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openai.types.responses.response_function_web_search_param import ResponseFunctionWebSearchParam

from responsa.protocol.errors import invalid
from responsa.tools.base import Emitter, ItemKind, ToolRequest, ToolRoute, Toolset, ToolType
from responsa.tools.client_calls import arguments, dumps, function_pair, only_keys, sdk_normaliser
from responsa.tools.web_search.backends import Result, SearchConfig, SearchUnavailable, from_config

Item = dict[str, Any]
NAME = "web_search"
TYPES = ("web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11")
_KEYS = frozenset({"type", "external_web_access", "filters", "search_context_size", "user_location",
                   "search_content_types"})
_URL = re.compile(r"https?://[^\s)\]>\"'`]+")


def _finished(item: Item) -> tuple[str, ...]:
    if item.get("status") == "completed":
        return ("response.web_search_call.searching", "response.web_search_call.completed")
    return ()


WEB_SEARCH_CALL = ItemKind("web_search_call", "ws", opened=("response.web_search_call.in_progress",),
                           finished=_finished, blank={"action": {"type": "search", "query": ""}}, executes=True)


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, _KEYS)
    if not isinstance(tool.get("external_web_access", True), bool):
        raise invalid(f"Invalid type for '{param}.external_web_access': expected a boolean.",
                      f"{param}.external_web_access", "invalid_type")
    size = tool.get("search_context_size")
    if size is not None and size not in ("low", "medium", "high"):
        raise invalid(f"Invalid value for '{param}.search_context_size': {size!r}. Supported values are: 'low', "
                      "'medium' and 'high'.", f"{param}.search_context_size")
    filters = tool.get("filters")
    if filters is not None:
        if not isinstance(filters, dict) or set(filters) - {"allowed_domains"}:
            raise invalid(f"Invalid '{param}.filters': only 'allowed_domains' is supported.", f"{param}.filters")
        domains = filters.get("allowed_domains")
        if domains is not None and (not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)):
            raise invalid(f"Invalid '{param}.filters.allowed_domains': expected an array of domain names.",
                          f"{param}.filters.allowed_domains", "invalid_type")
    location = tool.get("user_location")
    if location is not None and not isinstance(location, dict):
        raise invalid(f"Invalid type for '{param}.user_location': expected an object.", f"{param}.user_location",
                      "invalid_type")
    kinds = tool.get("search_content_types")
    if kinds is not None and (not isinstance(kinds, list) or not set(kinds) <= {"text", "image"}):
        raise invalid(f"Invalid '{param}.search_content_types': expected an array of 'text' and 'image'.",
                      f"{param}.search_content_types")
    return dict(tool)


def _decode(raw: str) -> Item:
    args = arguments(raw)
    query = args.get("query")
    if not isinstance(query, str):
        query = raw.strip() if raw and not args else dumps(args)
    return {"action": {"type": "search", "query": query, "queries": [query]}}


def _results_text(results: list[Result]) -> str:
    if not results:
        return "No results."
    return "\n\n".join(f"[{i}] {r.title}\n{r.url}\n{r.snippet}" for i, r in enumerate(results, 1))


def model_view(items: list[Item], outputs: Mapping[str, str] | None = None) -> list[Item]:
    """A ``web_search_call`` as the function call and output the model saw."""
    out = []
    for item in items:
        if item.get("type") != "web_search_call":
            out.append(item)
            continue
        action = item.get("action") or {}
        query = action.get("query") or " ".join(action.get("queries") or [])
        text = (outputs or {}).get(item["id"])
        if text is None:
            if item.get("status") == "failed":
                text = "Web search failed."
            else:
                text = "Results: " + (", ".join(s.get("url", "") for s in action.get("sources") or []) or "none kept")
        out.extend(function_pair(item["id"], NAME, {"query": query}, text))
    return out


class WebSearchToolset:
    def __init__(self, entry: dict[str, Any], config: SearchConfig) -> None:
        self.entry = entry
        self.config = config
        self.domains = list((entry.get("filters") or {}).get("allowed_domains") or [])
        self._outputs: dict[str, str] = {}
        self.titles: dict[str, str] = {}
        """URL -> title of every result this response saw (for citations)."""

    def _why_not(self) -> str | None:
        if self.config.backend is None:
            return ("Web search is unavailable: this server has no search backend configured. Answer from what "
                    "you know and say that you could not search.")
        if self.entry.get("external_web_access") is False:
            return ("Web search is unavailable: the request disabled live web access (external_web_access: "
                    "false) and this server keeps no cache of results.")
        return None

    async def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[dict[str, Any]]:
        context[:] = model_view(context)
        return
        yield

    def routes(self) -> Mapping[str, ToolRoute]:
        return {NAME: ToolRoute(WEB_SEARCH_CALL, {"action": {"type": "search", "query": ""}}, decode=_decode)}

    def definitions(self) -> list[dict[str, Any]]:
        description = "Search the web. Returns titles, URLs and snippets; cite the URLs you use."
        if self.domains:
            description += " Only these sites are searched: " + ", ".join(self.domains) + "."
        return [{"type": "function", "name": NAME, "description": description, "strict": False,
                 "parameters": {"type": "object", "properties": {"query": {"type": "string",
                                                                            "description": "What to search for."}},
                                "required": ["query"]}}]

    async def execute(self, calls: list[tuple[int, Item]], emit: Emitter) -> AsyncIterator[dict[str, Any]]:
        for index, item in calls:
            query = item["action"].get("query") or ""
            reason = self._why_not()
            results: list[Result] = []
            if reason is None:
                backend = self.config.backend
                assert backend is not None
                try:
                    results = await backend.search(query, max_results=self.config.max_results, domains=self.domains)
                except SearchUnavailable as exc:
                    reason = f"Web search failed: {exc}"
            if reason is not None:
                item["status"] = "failed"
                self._outputs[item["id"]] = reason
            else:
                item["status"] = "completed"
                item["action"]["sources"] = [{"type": "url", "url": r.url} for r in results]
                self._outputs[item["id"]] = _results_text(results)
                self.titles.update((r.url, r.title) for r in results)
            for ev in emit.finish_item(index, item):
                yield ev

    def annotate(self, text: str) -> list[dict[str, Any]]:
        """``url_citation`` annotations for result URLs the answer quotes."""
        found = []
        for match in _URL.finditer(text):
            url = match.group(0).rstrip(".,;:")
            if url in self.titles:
                found.append({"type": "url_citation", "url": url, "title": self.titles[url],
                              "start_index": match.start(), "end_index": match.start() + len(url)})
        return found

    def model_view(self, items: list[Item]) -> list[Item]:
        return model_view(items, self._outputs)

    async def aclose(self) -> None:
        return None


async def build(req: ToolRequest) -> Toolset | None:
    if (single := req.single_entry(NAME)) is None:
        return None
    index, entry = single
    return WebSearchToolset(parse_tool(entry, f"tools[{index}]"), from_config(req.settings.web_search))


TOOL_TYPE = ToolType(name="web_search", tool_types=TYPES, parse_tool=parse_tool, item_kinds=(WEB_SEARCH_CALL,),
                     input_items={"web_search_call": sdk_normaliser(ResponseFunctionWebSearchParam, "ws")},
                     model_view=model_view, build=build)
