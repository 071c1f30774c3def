"""From a validated request to a runnable ``Turn``: resolve the model(s),
check capabilities, load history (``previous_response_id``), normalise the
input and the tools. Everything a client can get wrong is caught here, before
any event is emitted, so it becomes a clean 4xx instead of a failed stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from responsa import limits
from responsa.config import Settings
from responsa.engine import compaction, file_inputs, prompts, tokens, truncation
from responsa.engine.events import EventBuilder
from responsa.engine.loop import Candidate, Turn
from responsa.files import FileStore
from responsa.protocol import shape
from responsa.protocol.errors import invalid, not_found
from responsa.protocol.ids import new_id
from responsa.protocol.items import normalize_input
from responsa.protocol.params import native, needs_native
from responsa.protocol.request import CreateResponse, instructions_text
from responsa.protocol.response import new_response
from responsa.protocol.types import Item
from responsa.providers.base import ModelRequest, ProviderError
from responsa.providers.registry import AppliesDefaults, Registry, UnknownModel
from responsa.store.base import Store
from responsa.tools import hosted
from responsa.tools.base import ToolRequest, Toolset, ToolType, VectorSearch
from responsa.tools.choices import as_function_choice
from responsa.tools.functions import check_schema
from responsa.tools.registry import BY_TOOL_TYPE, INPUT_ITEMS, ITEM_KINDS, TOOL_TYPES, supported_tool_types

_NOT_PARAMS = frozenset({"input", "instructions", "model", "tools", "tool_choice", "credentials"})
"""Request fields the Response does not echo as they were sent (``new_response`` params)."""


@dataclass(slots=True)
class Prepared:
    """A turn plus what the caller needs to persist and deliver it."""

    turn: Turn
    request_json: dict[str, Any]
    store: bool


def _model_candidates(req: CreateResponse, registry: Registry, default_model: str) -> tuple[str, list[Candidate]]:
    """The reference client's ``model`` forms: a string, ``{model, settings}``,
    or a list used as an ordered fallback chain. A list entry naming a model
    this server does not have is skipped (that is what a fallback list is
    for); only when none exists is it a 404. The display name is the
    canonical ``provider/model`` of the first usable entry, so a bare name and
    an omitted model echo alike."""
    raw = req.model if req.model is not None else default_model
    candidates = []
    display: str | None = None
    missing: list[UnknownModel] = []
    for param, name, settings in shape.model_entries(raw):
        try:
            found = registry.lookup(name)
        except UnknownModel as exc:
            if not isinstance(raw, list):
                raise not_found(str(exc), param, "model_not_found") from None
            missing.append(exc)
            continue
        except ProviderError as exc:
            exc.param = param
            raise
        display = display or found.name
        candidates.append(Candidate(found.provider, found.upstream, settings, found.name))
    if display is None:
        raise not_found("None of the models in the fallback list exists. " + " ".join(map(str, missing)),
                        "model", "model_not_found")
    return display, candidates


def _tools(req: CreateResponse) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``tools`` validated by the tool type registered for each entry's
    ``type``: the function tools the model is given directly, and every
    entry as the Response echoes it (secrets redacted), in request order.
    Linear in the number of tools (a set for duplicates: the list scan it
    replaced froze the server for 10-20 s on 20,000 tools)."""
    functions: list[dict[str, Any]] = []
    echoed: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, tool in enumerate(req.tools or []):
        ttype = tool.get("type")
        tt = BY_TOOL_TYPE.get(ttype) if isinstance(ttype, str) else None
        if tt is None or tt.parse_tool is None:
            raise invalid(f"Invalid value for 'tools[{i}].type': {ttype!r}. Supported tool types are "
                          f"{supported_tool_types()}.", f"tools[{i}].type", "unsupported_value")
        parsed = tt.parse_tool(tool, f"tools[{i}]")
        if parsed["type"] == "function":
            if parsed["name"] in names:
                raise invalid(f"Duplicate tool name {parsed['name']!r} in 'tools'.", f"tools[{i}].name")
            names.add(parsed["name"])
            functions.append(parsed)
        echoed.append(parsed)
    return functions, echoed


async def _toolsets(req: CreateResponse, *, history: list[Item], new_items: list[Item],
                    function_names: set[str], settings: Settings, tenant: str,
                    vector_search: VectorSearch | None) -> list[tuple[ToolType, Toolset]]:
    """The toolset of every tool type this request uses (each validates its
    part of the request first: 400s before anything runs)."""
    built: list[tuple[ToolType, Toolset]] = []
    for tt in TOOL_TYPES:
        if tt.build is None:
            continue
        entries = [(i, t) for i, t in enumerate(req.tools or []) if t.get("type") in tt.tool_types]
        toolset = await tt.build(ToolRequest(req, entries, history, new_items, function_names, settings, tenant,
                                             vector_search))
        if toolset is not None:
            built.append((tt, toolset))
    return built


def _check_call_ids(history: list[Item], new_items: list[Item]) -> None:
    if not any(it["type"] == "function_call_output" for it in new_items):
        return  # the history's calls are only collected when there is an output to match
    seen = {it["call_id"] for it in history if it["type"] == "function_call"}
    for i, it in enumerate(new_items):
        if it["type"] == "function_call":
            seen.add(it["call_id"])
        elif it["type"] == "function_call_output" and it["call_id"] not in seen:
            raise invalid(f"No tool call found for function call output with call_id {it['call_id']!r}.",
                          f"input[{i}].call_id", "tool_call_not_found")


def _needs_vision(items: list[Item]) -> bool:
    return any(isinstance(p, dict) and p.get("type") == "input_image"
               for it in items if it["type"] == "message" for p in it["content"])


async def load_history(store: Store, tenant: str, prev_id: str | None) -> list[Item]:
    """The stored context a ``previous_response_id`` continues."""
    if prev_id is None:
        return []
    loaded = await store.load_context(tenant, prev_id)
    if loaded is None:
        raise not_found(f"Previous response with id '{prev_id}' not found.", "previous_response_id",
                        "previous_response_not_found")
    return loaded


def _expand(items: list[Item], key: bytes | None, tenant: str, param: str) -> list[Item]:
    if key is None:
        if any(it["type"] == "compaction" for it in items):
            raise invalid("Compaction items are not accepted on this endpoint.", param, "unsupported_value")
        return items
    return compaction.expand(items, key=key, tenant=tenant, param=param)


async def resolve_references(store: Store, tenant: str, items: list[Item], param: str) -> None:
    """Replace ``item_reference`` items in place by the stored items they name."""
    refs = [it["id"] for it in items if it["type"] == "item_reference"]
    if not refs:
        return
    found = await store.get_items(tenant, refs)
    for i, it in enumerate(items):
        if it["type"] == "item_reference":
            if it["id"] not in found:
                raise not_found(f"Item with id '{it['id']}' not found.", f"{param}[{i}].id", "item_not_found")
            items[i] = found[it["id"]]


async def _load_conversation(store: Store, tenant: str, conversation_id: str) -> list[Item]:
    items = await store.load_conversation(tenant, conversation_id)
    if items is None:
        raise not_found(f"Conversation with id '{conversation_id}' not found.", "conversation",
                        "conversation_not_found")
    return items


def _compaction(req: CreateResponse, triggered: bool, context: list[Item], instructions: str | None,
                tools: list[dict[str, Any]], model: str, key: bytes | None, tenant: str) -> Item | None:
    """The ``compaction`` item this turn outputs first, if any: always with a
    ``compaction_trigger`` (then nothing else runs), and when
    ``context_management`` sets a ``compact_threshold`` the context exceeds.
    Compaction here is lossless (``engine.compaction``): the client can drop
    what the item stands for and send the item alone."""
    thresholds = [c["compact_threshold"] for c in req.context_management or [] if c.get("compact_threshold")]
    over = bool(thresholds) and tokens.count(context, instructions, tools, model) > min(thresholds)
    if not (triggered or over):
        return None
    if key is None:
        raise invalid("Compaction is not available on this endpoint.", "input", "unsupported_value")
    return compaction.encode(context, key=key, tenant=tenant)


async def prepare(req: CreateResponse, *, tenant: str, store: Store, registry: Registry,
                  default_model: str, history: list[Item] | None = None, compaction_key: bytes | None = None,
                  enforce_window: bool = True, files: FileStore | None = None,
                  vector_search: VectorSearch | None = None) -> Prepared:
    """``history`` overrides the store lookup of ``previous_response_id``
    (WebSocket mode keeps ``store=false`` responses on the connection).
    ``compaction_key`` verifies compaction items, which expand into the
    items they encode before anything else sees the context.
    ``enforce_window=False`` skips ``truncation`` (token counting wants the
    whole context). ``files`` resolves ``input_file`` parts (without it, they
    go to the provider as sent)."""
    shape.check_background(req)
    prompt = await prompts.resolve(req.prompt, tenant=tenant, store=store) if req.prompt else None
    model, candidates = _model_candidates(req, registry, (prompt and prompt.model) or default_model)
    heavy = limits.check_request(req.tools, req.input, req.text)  # 400 over a limit; else off-loop when heavy
    tools, echoed_tools = await limits.offload(heavy, _tools, req)
    has_server_tools = len(echoed_tools) > len(tools) or req.mcp_servers not in (None, "", [])
    choice, pseudo = as_function_choice(req.tool_choice, req.tools or [])
    tool_choice = shape.tool_choice(choice, {t["name"] for t in tools} | set(pseudo), server_tools=has_server_tools)
    instructions, _ = instructions_text(req)
    new_items = normalize_input(req.input, "input", INPUT_ITEMS)
    conversation_id = shape.conversation_id(req)
    if prompt is not None:
        # The prompt's instructions come first and the request's extend them;
        # its rendered items are this turn's input, ahead of the request's.
        instructions = "\n\n".join(t for t in (prompt.instructions, instructions) if t) or None
        new_items = [*prompt.items, *new_items]
    if not new_items and req.previous_response_id is None and conversation_id is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")

    prev_id = req.previous_response_id
    if history is None:
        history = await load_history(store, tenant, prev_id)
    if conversation_id is not None:
        history = [*history, *await _load_conversation(store, tenant, conversation_id)]
    await resolve_references(store, tenant, new_items, "input")
    # What the context holds, in one pass (tokens.Survey): every pass below
    # that only rewrites some kinds of item skips a long history without them.
    seen = tokens.survey(history)
    if "compaction" in seen.types:
        history = _expand(history, compaction_key, tenant, "previous_response_id")
        seen = tokens.survey(history)
    expanded = _expand(new_items, compaction_key, tenant, "input")
    seen.add(tokens.survey(expanded))
    _check_call_ids(history, expanded)
    triggers = [i for i, it in enumerate(new_items) if it["type"] == "compaction_trigger"]
    if triggers and triggers != [len(new_items) - 1]:
        raise invalid("A 'compaction_trigger' item must be the last input item.", f"input[{triggers[0]}]")
    toolsets = await _toolsets(req, history=history, new_items=expanded, function_names={t["name"] for t in tools},
                               settings=registry.settings, tenant=tenant, vector_search=vector_search)

    caps = candidates[0].provider.capabilities(candidates[0].model)
    dumped = req.model_dump(exclude_unset=True)  # read-only below (the stored request is its own copy)
    if (needed := needs_native(dumped)) and not caps.responses_native:
        raise invalid(f"'{needed}' needs an upstream that speaks the Responses API natively (an "
                      f"'openai-responses' provider); model '{model}' cannot honour it.", needed,
                      "unsupported_parameter")
    hosted_tools = [(i, t) for i, t in enumerate(req.tools or []) if t.get("type") in hosted.TYPES]
    for i, t in hosted_tools:
        if not caps.responses_native:
            raise hosted.unsupported(t, f"tools[{i}]", model)
    if (tools or toolsets or hosted_tools) and not caps.tools:
        raise invalid(f"Model '{model}' does not support tools.", "tools", "unsupported_parameter")
    if tool_choice not in ("auto", "none") and not caps.tool_choice_required and \
            not (isinstance(tool_choice, dict) and tool_choice.get("mode") == "auto"):
        raise invalid(f"Model '{model}' cannot be made to call a tool: use 'tool_choice' 'auto' or 'none'.",
                      "tool_choice", "unsupported_parameter")
    fmt = (req.text or {}).get("format") or {"type": "text"}
    if fmt.get("type") == "json_schema" and fmt.get("strict"):
        check_schema(fmt["schema"], "text.format.schema")
    if fmt.get("type") == "json_schema" and not caps.json_schema:
        raise invalid(f"Model '{model}' does not support structured output.", "text.format",
                      "unsupported_parameter")
    if req.top_logprobs and not caps.logprobs:
        raise invalid(f"Model '{model}' does not return log probabilities.", "top_logprobs",
                      "unsupported_parameter")
    if req.reasoning and req.reasoning.get("effort") not in (None, "none") and not caps.reasoning:
        raise invalid(f"Model '{model}' is not a reasoning model.", "reasoning.effort", "unsupported_parameter")
    context = [*history, *expanded]
    if "compaction_trigger" in seen.types:  # (seen.bound stays a bound without them)
        context = [it for it in context if it["type"] != "compaction_trigger"]
    compacted = _compaction(req, bool(triggers), context, instructions, tools, candidates[0].model,
                            compaction_key, tenant)
    active = {tt.name for tt, _ in toolsets}
    for tt in TOOL_TYPES:  # items of tool types this request does not bring, as any model reads them
        if tt.name not in active and tt.views(seen.types):
            context = tt.model_view(context)
            seen = tokens.survey(context)
    if files is not None and not file_inputs.PART_TYPES.isdisjoint(seen.parts):  # before truncation counts
        inlined = await file_inputs.inline(context, expanded, files=files, tenant=tenant, native=caps.native_files,
                                           allow_private=registry.settings.mcp_allow_private)
        if inlined is not context:
            context, seen = inlined, tokens.survey(inlined)
    if enforce_window and not truncation.surely_fits(context, instructions=instructions, tools=tools,
                                                     window=caps.context_window, reserve=req.max_output_tokens or 0,
                                                     surveyed=seen):
        context = await limits.offload(heavy or len(context) > 256, truncation.fit, context,
                                       instructions=instructions, tools=tools, model=candidates[0].model,
                                       window=caps.context_window, reserve=req.max_output_tokens or 0,
                                       truncation=req.truncation)
    if not caps.vision and "input_image" in seen.parts and _needs_vision(context):
        raise invalid(f"Model '{model}' does not accept image input.", "input", "unsupported_parameter")

    params = {k: v for k, v in dumped.items() if k not in _NOT_PARAMS}
    temperature, max_output_tokens = req.temperature, req.max_output_tokens
    first = candidates[0]
    # Echo what the model really uses, not the API default. (An attribute test,
    # not ``isinstance(.., AppliesDefaults)``: a runtime protocol check costs ~25 us a request.)
    if hasattr(first.provider, "applied_defaults"):
        applied = cast(AppliesDefaults, first.provider).applied_defaults(first.model)
        if temperature is None and "temperature" in applied:
            temperature = params["temperature"] = applied["temperature"]
        if max_output_tokens is None and "max_output_tokens" in applied:
            max_output_tokens = params["max_output_tokens"] = applied["max_output_tokens"]
    if prompt is not None:
        params["prompt"] = prompt.echo
    do_store = req.store is not False
    response = new_response(
        id=new_id("resp"), model=model, status="in_progress", instructions=instructions, tools=echoed_tools,
        tool_choice=req.tool_choice if choice is not req.tool_choice else tool_choice, params=params,
        previous_response_id=prev_id, conversation_id=conversation_id,
        store=do_store, background=bool(req.background), metadata=req.metadata or {})
    model_request = ModelRequest(
        model=candidates[0].model, items=context, instructions=instructions,
        tools=[*tools, *(t for _, t in hosted_tools)],
        tool_choice=tool_choice, parallel_tool_calls=req.parallel_tool_calls is not False, text_format=fmt,
        temperature=temperature, top_p=req.top_p, presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty, max_output_tokens=max_output_tokens,
        top_logprobs=req.top_logprobs, reasoning=req.reasoning, include=req.include or [],
        user=req.safety_identifier or req.user, native=native(dumped))
    obfuscate = bool(req.stream) and (req.stream_options or {}).get("include_obfuscation") is True
    for tt, _ in toolsets:
        if tt.response_fields is not None:
            response.update(tt.response_fields())
    turn = Turn(response=response, request=model_request, candidates=candidates, input_items=new_items,
                builder=EventBuilder(response, kinds=ITEM_KINDS, obfuscate=obfuscate),
                toolsets=[ts for _, ts in toolsets], compaction=compacted, compact_only=bool(triggers))
    request_json = req.model_dump(exclude_unset=True, exclude={"credentials"})
    if req.credentials not in (None, []):
        # Marked, never kept: a queued job re-run elsewhere must know it had
        # credentials it can no longer send (engine.background._rerun).
        request_json["credentials"] = "[redacted]"
    if req.tools:
        request_json["tools"] = [BY_TOOL_TYPE[t["type"]].redact(t) for t in req.tools]
    return Prepared(turn=turn, request_json=request_json, store=do_store)
