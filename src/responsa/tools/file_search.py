"""``file_search``: Responsa searches the caller's vector stores itself, for every provider.

The model sees a ``file_search(query)`` function; its call becomes a
``file_search_call`` item (``queries``, ``status``, ``results``) that the
server runs against the request's ``vector_store_ids`` (the same hybrid
search as ``POST /v1/vector_stores/{id}/search``, with the tool's
``filters``, ``max_num_results`` and ``ranking_options``), streaming
``response.file_search_call.in_progress``, ``.searching`` and
``.completed``. The excerpts go back to the model, each headed by its file
name, and the answer gets ``file_citation`` annotations (``file_id``,
``filename``, ``index``):

- where the answer names a file it was shown (``[report.pdf]`` or just
  ``report.pdf``), one citation per file at the end of its first mention;
- when it names none, one citation per file whose excerpts it was given,
  best first, at the end of the text: those files are what the answer was
  written from. (OpenAI's own models place citation markers; small local
  models seldom do, and an answer with no source at all helps nobody.)

``results`` is kept in the store (later turns show the model what it
found) but is ``null`` to clients unless they ask with ``include:
["file_search_call.results"]``, as on OpenAI.

This replaces passing ``file_search`` through to an OpenAI upstream: vector
store ids are Responsa's own, so the tool runs here whatever the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from openai.types.responses.response_file_search_tool_call_param import ResponseFileSearchToolCallParam

from responsa.protocol.errors import ResponsaError, invalid
from responsa.tools.base import Emitter, ItemKind, SearchHit, ToolRequest, ToolRoute, Toolset, ToolType, VectorSearch
from responsa.tools.client_calls import arguments, dumps, function_pair, only_keys, sdk_normaliser
from responsa.vectorstores.filters import check_filter
from responsa.vectorstores.ranking import parse_ranking
from responsa.vectorstores.search import MAX_RESULTS, MAX_SEARCH_STORES

Item = dict[str, Any]
NAME = "file_search"
DEFAULT_MAX_RESULTS = 10
_KEYS = frozenset({"type", "vector_store_ids", "filters", "max_num_results", "ranking_options"})


def _finished(item: Item) -> tuple[str, ...]:
    if item.get("status") == "completed":
        return ("response.file_search_call.searching", "response.file_search_call.completed")
    return ()


FILE_SEARCH_CALL = ItemKind("file_search_call", "fs", opened=("response.file_search_call.in_progress",),
                            finished=_finished, outcomes=("response.file_search_call.searching",
                                                          "response.file_search_call.completed"),
                            results=("results",), blank={"queries": []}, executes=True)


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    """The entry as echoed; ``filters`` and ``ranking_options`` are checked by
    the vector stores' own rules (those of ``/v1/vector_stores/{id}/search``)."""
    only_keys(tool, param, _KEYS)
    ids = tool.get("vector_store_ids")
    if ids is None:
        raise invalid(f"Missing required parameter: '{param}.vector_store_ids'.", f"{param}.vector_store_ids",
                      "missing_required_parameter")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise invalid(f"Invalid type for '{param}.vector_store_ids': expected an array of vector store ids.",
                      f"{param}.vector_store_ids", "invalid_type")
    if not 1 <= len(ids) <= MAX_SEARCH_STORES:
        raise invalid(f"Invalid '{param}.vector_store_ids': expected 1 to {MAX_SEARCH_STORES} vector store ids, "
                      f"got {len(ids)}.", f"{param}.vector_store_ids")
    n = tool.get("max_num_results")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_RESULTS):
        raise invalid(f"Invalid '{param}.max_num_results': expected an integer from 1 to {MAX_RESULTS}.",
                      f"{param}.max_num_results")
    if tool.get("ranking_options") is not None:
        parse_ranking(tool["ranking_options"], param=f"{param}.ranking_options")
    if tool.get("filters") is not None:
        check_filter(tool["filters"], f"{param}.filters")
    return dict(tool)


def _decode(raw: str) -> Item:
    args = arguments(raw)
    query = args.get("query")
    if not isinstance(query, str):
        query = raw.strip() if raw and not args else dumps(args)
    return {"queries": [query]}


def results_text(query: str, results: list[Item]) -> str:
    """What the model reads: every excerpt headed by its file name (the name it may cite)."""
    if not results:
        return f"No excerpt of the files matches {query!r}."
    parts = [f"[{r.get('filename') or r.get('file_id')}] (file_id {r.get('file_id')}, score "
             f"{float(r.get('score') or 0):.3f})\n{r.get('text') or ''}" for r in results]
    return f"{len(results)} excerpts for {query!r}:\n\n" + "\n\n".join(parts)


def model_view(items: list[Item], outputs: Mapping[str, str] | None = None) -> list[Item]:
    """A ``file_search_call`` as the function call and output the model saw."""
    out = []
    for item in items:
        if item.get("type") != "file_search_call":
            out.append(item)
            continue
        query = " ".join(item.get("queries") or [])
        text = (outputs or {}).get(item["id"])
        if text is None:
            if item.get("status") == "failed":
                text = "File search failed."
            elif item.get("results") is None:
                text = "File search ran; its results were not kept."
            else:
                text = results_text(query, item["results"])
        out.extend(function_pair(item["id"], NAME, {"query": query}, text))
    return out


def _result(hit: SearchHit) -> Item:
    out: Item = {"file_id": hit.file_id, "filename": hit.filename, "score": hit.score, "text": hit.text}
    if hit.attributes:
        out["attributes"] = dict(hit.attributes)
    return out


class FileSearchToolset:
    def __init__(self, entry: dict[str, Any], search: VectorSearch, tenant: str) -> None:
        self.entry = entry
        self.search = search
        self.tenant = tenant
        self._outputs: dict[str, str] = {}
        self.files: dict[str, str] = {}
        """file_id -> filename of every file the model was shown, best first."""

    async def prepare(self, emit: Emitter, context: list[Item]) -> AsyncIterator[dict[str, Any]]:
        context[:] = model_view(context)
        return
        yield

    def routes(self) -> Mapping[str, ToolRoute]:
        return {NAME: ToolRoute(FILE_SEARCH_CALL, {"queries": []}, decode=_decode)}

    def definitions(self) -> list[dict[str, Any]]:
        return [{"type": "function", "name": NAME, "strict": False,
                 "description": "Search the user's uploaded files. Returns excerpts, each headed by its file name "
                                "in brackets; cite the files you use by that name, e.g. [notes.pdf].",
                 "parameters": {"type": "object", "properties": {"query": {
                     "type": "string", "minLength": 1, "maxLength": 120,
                     "description": "What to look for in the files."}},
                                "required": ["query"]}}]

    async def execute(self, calls: list[tuple[int, Item]], emit: Emitter) -> AsyncIterator[dict[str, Any]]:
        for index, item in calls:
            query = " ".join(item.get("queries") or [])
            try:
                hits = await self.search.search(
                    self.tenant, self.entry["vector_store_ids"], query,
                    max_num_results=self.entry.get("max_num_results") or DEFAULT_MAX_RESULTS,
                    filters=self.entry.get("filters"), ranking_options=self.entry.get("ranking_options"))
            except ResponsaError as exc:
                item["status"] = "failed"
                item["results"] = None
                self._outputs[item["id"]] = f"File search failed: {exc.message}"
            else:
                results = [_result(h) for h in hits]
                item["status"] = "completed"
                item["results"] = results
                self._outputs[item["id"]] = results_text(query, results)
                for r in results:
                    self.files.setdefault(r["file_id"], r["filename"])
            for ev in emit.finish_item(index, item):
                yield ev

    def annotate(self, text: str) -> list[dict[str, Any]]:
        """``file_citation`` annotations (see the module docstring)."""
        found: list[dict[str, Any]] = []
        for file_id, filename in self.files.items():
            for needle in (f"[{filename}]", filename, file_id):
                at = text.find(needle) if needle else -1
                if at >= 0:
                    found.append({"type": "file_citation", "file_id": file_id, "filename": filename,
                                  "index": at + len(needle)})
                    break
        if found or not text:
            return found
        return [{"type": "file_citation", "file_id": file_id, "filename": filename, "index": len(text)}
                for file_id, filename in self.files.items()]

    def model_view(self, items: list[Item]) -> list[Item]:
        return model_view(items, self._outputs)

    async def aclose(self) -> None:
        return None


async def build(req: ToolRequest) -> Toolset | None:
    if (single := req.single_entry(NAME)) is None:
        return None
    index, entry = single
    param = f"tools[{index}]"
    entry = parse_tool(entry, param)
    if req.vector_search is None:
        raise invalid(f"'{param}' is a 'file_search' tool, but this server has no vector stores.", f"{param}.type",
                      "unsupported_value")
    for j, vid in enumerate(entry["vector_store_ids"]):
        try:
            await req.vector_search.retrieve(req.tenant, vid)
        except ResponsaError as exc:
            exc.param = f"{param}.vector_store_ids[{j}]"
            raise
    return FileSearchToolset(entry, req.vector_search, req.tenant)


TOOL_TYPE = ToolType(name="file_search", tool_types=("file_search",), parse_tool=parse_tool,
                     item_kinds=(FILE_SEARCH_CALL,),
                     input_items={"file_search_call": sdk_normaliser(ResponseFileSearchToolCallParam, "fs")},
                     model_view=model_view, build=build)
