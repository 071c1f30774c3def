"""The one encoder: every Responses event is made here.

``EventBuilder`` turns provider-neutral ``ModelEvent``s and the items tool
types open and finish into the Responses event stream; it alone assigns
output indexes and sequence numbers (item ids come from the items). The
same builder makes:

- the live stream (``feed`` / ``close_open`` / ``open_item`` / ``finish_item``);
- the replay of a stored response (``replay``: every stored output item fed
  back through ``replay_item``), for ``GET /v1/responses/{id}?stream=true``
  and idempotent retries of a streamed request;
- every ending: ``complete``, ``fail`` (the ``error`` + ``response.failed``
  sequence) and ``stop`` (a turn halted from outside: cancelled, server
  shutdown, client gone), used by the loop, the background runner and
  WebSocket mode alike.

Ordering rule: an item's events are contiguous. An item that starts while
an earlier one is still open (a second parallel call, text after an MCP
call that has not run yet) has its events held and sent, in order, as soon
as every earlier item is done. So each item's events depend only on the
item, and replaying item by item gives the live sequence.

Deltas: the builder cuts every streamed text (message text, refusals,
reasoning, call arguments) into pieces by one rule that depends on the
text alone (``pieces``: a word and the spaces after it, at most
``PIECE_CHARS`` non-space characters), holding back the last, possibly
unfinished, piece until the next one starts or the part ends. The store
keeps only the final text, and replay cuts it by the same rule, so a replay
has the very deltas of the live stream: the same events, payloads and
sequence numbers (``starting_after=N`` names the same event in both). Only
``obfuscation`` (a per-connection option) is not replayed. Log
probabilities go with the piece holding their token's last character.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError, error_object, from_stored, stored_error
from responsa.protocol.ids import new_id
from responsa.protocol.types import Event, Item, Response
from responsa.providers import base as m
from responsa.tools.base import ItemKind, ToolRoute
from responsa.tools.functions import FUNCTION_CALL

PIECE_CHARS = 24
"""Longest run of non-space characters in one delta (text without spaces,
such as Chinese, or JSON arguments, still streams)."""
_PIECE = re.compile(rf"\s*\S{{1,{PIECE_CHARS}}}\s*|\s+")
_WORD = re.compile(rf"\S{{1,{PIECE_CHARS}}}\s*")
_SPACED_WORD = re.compile(rf"(\s+)(\S{{1,{PIECE_CHARS}}}\s*)")

Logprobs = list[dict[str, Any]]


def pieces(text: str, logprobs: Logprobs | None = None) -> list[tuple[str, Logprobs]]:
    """``text`` cut into the deltas the live stream sends (see the module
    docstring), each with the log probabilities of the tokens that end in it."""
    cut = _Pieces()
    return [*cut.feed(text, logprobs), *cut.flush()]


class _Pieces:
    """Cuts a text arriving in arbitrary chunks into ``pieces``. A piece is
    final once the next one has begun: every earlier boundary of the rule
    depends only on the characters up to the next piece's first one."""

    __slots__ = ("_buf", "_chars", "_end", "_tokens")

    def __init__(self) -> None:
        self._buf = ""
        self._end = 0  # characters sent so far
        self._tokens: list[tuple[int, dict[str, Any]]] = []  # (end offset, logprob) not yet sent
        self._chars = 0  # characters of tokens seen so far

    def feed(self, text: str, logprobs: Logprobs | None = None) -> list[tuple[str, Logprobs]]:
        if logprobs:
            for lp in logprobs:
                self._chars += len(str(lp.get("token", "")))
                self._tokens.append((self._chars, lp))
        buf = self._buf
        if buf and not self._tokens and text and not buf.isspace():
            # Fast paths for the usual chunk shapes ("word " after "word ", " word" after " word"):
            # the same result as cutting ``buf + text``, without re-cutting the held piece.
            if buf[-1].isspace():
                if _WORD.fullmatch(text):
                    self._buf, self._end = text, self._end + len(buf)
                    return [(buf, [])]
            elif (m := _SPACED_WORD.fullmatch(text)) is not None:
                piece = buf + m[1]
                self._buf, self._end = m[2], self._end + len(piece)
                return [(piece, [])]
        found = _PIECE.findall(buf + text)
        self._buf = found.pop() if found else ""
        if not found:
            return []
        if not self._tokens:  # the common case: no log probabilities to place
            self._end += sum(map(len, found))
            return [(p, []) for p in found]
        return [self._take(p) for p in found]

    def flush(self) -> list[tuple[str, Logprobs]]:
        out = [self._take(self._buf)] if self._buf else []
        self._buf = ""
        if self._tokens and out:  # tokens past the text (odd token texts): with the last piece
            out[-1][1].extend(lp for _, lp in self._tokens)
        self._tokens, self._end, self._chars = [], 0, 0
        return out

    def _take(self, piece: str) -> tuple[str, Logprobs]:
        self._end += len(piece)
        n = 0
        while n < len(self._tokens) and self._tokens[n][0] <= self._end:
            n += 1
        taken = [lp for _, lp in self._tokens[:n]]
        del self._tokens[:n]
        return piece, taken


@dataclass(slots=True, eq=False)
class _Segment:
    """The events of one output item, sent once every earlier item is done."""

    index: int
    item: Item
    kind: ItemKind | None = None
    events: list[Event] = field(default_factory=list)
    done: bool = False


@dataclass(slots=True, eq=False)
class _Call:
    kind: ItemKind
    seg: _Segment
    chunks: list[str] = field(default_factory=list)
    cut: _Pieces = field(default_factory=_Pieces)
    decode: Callable[[str], dict[str, Any]] | None = None


def _added_view(kind: ItemKind, item: Item) -> Item:
    """An item of ``kind`` as ``output_item.added`` shows it: before its work."""
    out = {k: v for k, v in item.items() if k not in kind.results}
    out.update(kind.blank)
    if kind.stream:
        out[kind.stream] = ""
    if kind.status:
        out["status"] = "in_progress"
    return out


def _empty_part(part_type: str) -> dict[str, Any]:
    if part_type == "refusal":
        return {"type": "refusal", "refusal": ""}
    return {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


class EventBuilder:
    """Builds one response's events and output items.

    One builder lives for a whole response, across every model step of the
    agent loop, so indexes and sequence numbers continue across steps. Every
    public method returns the events that may be sent now, in order.
    """

    def __init__(self, response: Response, *, kinds: Mapping[str, ItemKind], obfuscate: bool = False,
                 error_event: bool = True) -> None:
        self.response = response
        self.seq = 0
        self.kinds = kinds
        self.obfuscate = obfuscate
        self.error_event = error_event
        """Whether a failure sends ``error`` before ``response.failed`` (SSE
        does; a WebSocket turn ends at its one terminal frame)."""
        self.quiet = False
        """Only the lifecycle events (``created``, ``in_progress``, the
        ending): a non-streamed turn, whose caller keeps the final response
        alone, skips cutting deltas and building the item events nobody
        reads. The output items are the same either way."""
        self.routes: Mapping[str, ToolRoute] = {}
        self.annotators: list[Callable[[str], list[dict[str, Any]]]] = []
        """Toolsets that annotate the answer's text (``web_search``: ``url_citation``s of its results)."""
        self.single_call = False
        """``parallel_tool_calls=false``: keep only the first call of a model
        step; a provider that sends more anyway has the extras dropped before
        any event is emitted for them."""
        self.step_calls: list[tuple[ItemKind, Item]] = []
        """The calls the model made in the current step (kind, item)."""
        self._segments: deque[_Segment] = deque()
        self._open: dict[int, _Segment] = {}
        self._message: _Segment | None = None
        self._part_type = "output_text"
        self._part_open = False
        self._text: list[str] = []
        self._logprobs: list[dict[str, Any]] = []
        self._cut = _Pieces()
        self._reasoning: _Segment | None = None
        self._reasoning_text: list[str] = []
        self._reasoning_cut = _Pieces()
        self._reasoning_summary = False
        self._calls: dict[int, _Call] = {}
        self._pending: list[tuple[int, Item]] = []

    @property
    def output(self) -> list[Item]:
        """The response's output items (read through the response: a re-run
        background job has its response updated from the store)."""
        items: list[Item] = self.response["output"]
        return items

    # -- plumbing ------------------------------------------------------------

    @staticmethod
    def _new(type: str, **fields: Any) -> Event:
        """An event without its sequence number (given when it is sent)."""
        return {"type": type, "sequence_number": -1, **fields}

    def _send(self, ev: Event) -> Event:
        ev["sequence_number"] = self.seq
        self.seq += 1
        return ev

    def _drain(self) -> list[Event]:
        """Number and hand out every event that may go now (hot: once per model event)."""
        segments = self._segments
        out: list[Event] = []
        if self.quiet:
            while segments and segments[0].done:
                segments.popleft()
            for seg in segments:
                seg.events.clear()
            return out
        seq = self.seq
        while segments:
            front = segments[0]
            events = front.events
            if events:
                for ev in events:
                    ev["sequence_number"] = seq
                    seq += 1
                if out:
                    out += events
                else:
                    out = events
                front.events = []
            if not front.done:
                break
            segments.popleft()
        self.seq = seq
        return out

    def _pad(self, ev: Event, delta: str) -> Event:
        if self.obfuscate:
            ev["obfuscation"] = secrets.token_urlsafe(max(1, 12 - len(delta)))[: max(1, 16 - len(delta))]
        return ev

    def _add(self, item: Item, shown: Item, kind: ItemKind | None = None) -> _Segment:
        index = len(self.output)
        self.output.append(item)
        seg = _Segment(index, item, kind)
        self._segments.append(seg)
        self._open[index] = seg
        seg.events.append(self._new(E.ITEM_ADDED, output_index=index, item=shown))
        return seg

    def _at(self, seg: _Segment, type: str, **fields: Any) -> Event:
        ev = self._new(type, item_id=seg.item["id"], output_index=seg.index, **fields)
        seg.events.append(ev)
        return ev

    def _done(self, seg: _Segment) -> None:
        if not self.quiet:
            seg.events.append(self._new(E.ITEM_DONE, output_index=seg.index, item=dict(seg.item)))
        seg.done = True
        self._open.pop(seg.index, None)

    # -- lifecycle -----------------------------------------------------------

    def snapshot(self, type: str) -> Event:
        """A lifecycle event carrying the response as it is now."""
        return self._send(self._new(type, response={**self.response, "output": list(self.output)}))

    def begin(self, *, queued: bool = False) -> list[Event]:
        """``response.created`` and ``response.in_progress`` (a background job
        first shows ``queued``, as OpenAI's SDK expects every stream to begin
        with ``response.created``)."""
        events = []
        if queued:
            self.response["status"] = "queued"
            events += [self.snapshot(E.CREATED), self.snapshot(E.QUEUED)]
        self.response["status"] = "in_progress"
        if not queued:
            events.append(self.snapshot(E.CREATED))
        events.append(self.snapshot(E.IN_PROGRESS))
        return events

    def complete(self, status: str, usage: dict[str, Any], *, reason: str | None = None,
                 completed_at: int | None = None) -> list[Event]:
        """End a turn that ran to its end: ``completed``, or ``incomplete`` for ``reason``."""
        events = self.close_all("incomplete")
        r = self.response
        r["usage"] = usage
        r["status"] = status
        if status == "incomplete":
            r["incomplete_details"] = {"reason": reason}
        else:
            r["completed_at"] = completed_at
        return [*events, self._terminal()]

    def fail(self, exc: ResponsaError, usage: dict[str, Any] | None = None) -> list[Event]:
        """The spec's failure sequence: open items end ``incomplete``, then an
        ``error`` event, then ``response.failed`` whose ``error`` records the
        failure so that a replay reports exactly the same error."""
        events = self.close_all("incomplete")
        r = self.response
        r["status"] = "failed"
        if usage is not None:
            r["usage"] = usage
        r["error"] = stored_error(exc)
        return [*events, *self._failure()]

    def stop(self, error: ResponsaError | None) -> list[Event]:
        """End a turn halted from outside the loop: cancelled (``error`` None:
        status ``cancelled``, ``error`` null, ended by ``response.failed`` as
        no ``response.cancelled`` event exists) or failed with ``error``."""
        events = self.close_all("incomplete")
        for i, item in enumerate(self.output):
            if item.get("status") == "in_progress":
                self.output[i] = {**item, "status": "incomplete"}
        if error is not None:
            return [*events, *self.fail(error)]
        self.response["status"] = "cancelled"
        return [*events, self._terminal()]

    def _failure(self) -> list[Event]:
        events = []
        if self.error_event:
            exc = from_stored(self.response.get("error"))
            events.append(self._send(self._new(E.ERROR, error=error_object(exc))))
        return [*events, self._terminal()]

    def _terminal(self) -> Event:
        return self._send(self._new(E.FINAL_STATUS[self.response["status"]], response=self.response))

    # -- items opened by tool types (the ``tools.base.Emitter`` protocol) --------

    def open_item(self, kind: ItemKind, item: Item) -> tuple[int, list[Event]]:
        seg = self._begin(kind, item)
        value = item.get(kind.stream) if kind.stream else None
        if kind.stream:
            for piece, _ in pieces(value or ""):
                self._chunk(kind, seg, piece)
            self._stream_done(kind, seg)
        return seg.index, self._drain()

    def finish_item(self, index: int, item: Item) -> list[Event]:
        seg = self._open[index]
        seg.item = self.output[index] = item
        self._finish(seg)
        return self._drain()

    def take_server_calls(self) -> list[tuple[int, Item]]:
        """Items of ``executes`` kinds the last model step made: open until
        their toolset runs them and ends them with ``finish_item``."""
        calls, self._pending = self._pending, []
        return calls

    def _begin(self, kind: ItemKind, item: Item) -> _Segment:
        seg = self._add(item, _added_view(kind, item), kind)
        for name in kind.opened:
            self._at(seg, name)
        return seg

    def _chunk(self, kind: ItemKind, seg: _Segment, chunk: str) -> None:
        if kind.delta:
            self._pad(self._at(seg, kind.delta, delta=chunk), chunk)

    def _stream_done(self, kind: ItemKind, seg: _Segment) -> None:
        if kind.done and kind.stream:
            item = seg.item
            self._at(seg, kind.done, **{kind.stream: item[kind.stream]},
                     **{k: item[k] for k in kind.done_fields})

    def _finish(self, seg: _Segment) -> None:
        assert seg.kind is not None
        for name in seg.kind.finished(seg.item):
            self._at(seg, name)
        self._done(seg)

    # -- the model's events --------------------------------------------------

    def feed(self, ev: m.ModelEvent) -> list[Event]:
        if isinstance(ev, m.TextDelta):
            self._text_delta(ev.text, ev.logprobs, "output_text")
        elif isinstance(ev, m.RefusalDelta):
            self._text_delta(ev.text, None, "refusal")
        elif isinstance(ev, m.ReasoningDelta):
            self._reasoning_delta(ev)
        elif isinstance(ev, m.ReasoningDone):
            # Some upstreams send only opaque reasoning (a signature, no text):
            # it still needs an item to round-trip in.
            if self._reasoning is None:
                self._reasoning_delta(m.ReasoningDelta(""))
            self._close_reasoning(ev.encrypted_content)
        elif isinstance(ev, m.ToolCallStart):
            self._call_start(ev)
        elif isinstance(ev, m.HostedItem):
            # A tool the upstream ran itself: its finished item, as the upstream made it.
            self._close_message()
            self._close_reasoning(None)
            self._done(self._add(ev.item, dict(ev.item)))
        elif isinstance(ev, m.ToolCallDelta):
            call = self._calls.get(ev.index)
            if call is not None and ev.arguments:
                call.chunks.append(ev.arguments)
                if call.decode is None and not self.quiet:
                    for piece, _ in call.cut.feed(ev.arguments):
                        self._chunk(call.kind, call.seg, piece)
        return self._drain()

    def close_open(self, status: str = "completed") -> list[Event]:
        """End of a model step: close the model's open items. Calls of
        ``executes`` kinds stay open for ``take_server_calls``."""
        self._close_model(status)
        return self._drain()

    def close_all(self, status: str = "incomplete") -> list[Event]:
        """Close every open item (a turn ending early): model items, calls
        waiting to run, anything a tool type opened."""
        self._close_model(status)
        self._pending = []
        for seg in list(self._open.values()):
            if seg.kind is not None and seg.kind.status:
                if seg.item.get("status") == "in_progress":
                    seg.item["status"] = status
                self._finish(seg)
            else:  # cut short: no outcome to report
                self._done(seg)
        return self._drain()

    def _close_model(self, status: str) -> None:
        self._close_reasoning(None)
        self._close_message(status)
        self._close_calls(status)

    def new_step(self) -> None:
        """A model step begins: ``step_calls`` starts empty."""
        self.step_calls = []

    def _call_start(self, ev: m.ToolCallStart) -> None:
        if self.single_call and self.step_calls:
            return
        self._close_message()
        self._close_reasoning(None)
        route = self.routes.get(ev.name)
        kind = route.kind if route is not None else FUNCTION_CALL
        fields = dict(route.fields) if route is not None else {"name": ev.name}
        item: Item = {"type": kind.type, "id": new_id(kind.id_prefix)}
        if kind.call_id:
            item["call_id"] = ev.call_id
        item.update(fields)
        if kind.stream:
            item[kind.stream] = ""
        if kind.status:
            item["status"] = "in_progress"
        seg = self._begin(kind, item)
        self._calls[ev.index] = _Call(kind, seg, decode=route.decode if route is not None else None)
        self.step_calls.append((kind, item))

    def _close_calls(self, status: str) -> None:
        for key in sorted(self._calls):
            call = self._calls[key]
            item, kind, seg = call.seg.item, call.kind, call.seg
            if call.decode is not None:
                item.update(call.decode("".join(call.chunks)))
                if kind.stream and not self.quiet:  # cut as any streamed text is: a replay sends the same deltas
                    for piece, _ in pieces(str(item.get(kind.stream) or "")):
                        self._chunk(kind, seg, piece)
            else:
                for piece, _ in call.cut.flush():
                    self._chunk(kind, seg, piece)
            if kind.stream and call.decode is None:
                item[kind.stream] = "".join(call.chunks)
            self._stream_done(kind, seg)
            if kind.executes and status == "completed":
                self._pending.append((seg.index, item))
                continue
            if kind.status:
                item["status"] = status
            self._finish(seg)
        self._calls.clear()

    def _text_delta(self, text: str, logprobs: list[dict[str, Any]] | None, part_type: str) -> None:
        if self._message is not None and self._part_type != part_type:
            self._close_part()
        if self._message is None:
            self._close_reasoning(None)
            self._close_calls("completed")
            item: Item = {"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant",
                          "content": []}
            self._message = self._add(item, {**item, "content": []})
        msg = self._message
        if not self._part_open:
            self._part_type = part_type
            self._part_open = True
            self._at(msg, E.PART_ADDED, content_index=len(msg.item["content"]), part=_empty_part(part_type))
        if not text:
            return
        self._text.append(text)
        if logprobs:
            self._logprobs.extend(logprobs)
        if self.quiet:
            return
        for piece, lps in self._cut.feed(text, logprobs):
            self._text_piece(msg, piece, lps)

    def _text_piece(self, msg: _Segment, piece: str, logprobs: Logprobs) -> None:
        # Hot (once per delta): the event is built in place rather than through ``_at``.
        ev: Event = {"type": E.REFUSAL_DELTA if self._part_type == "refusal" else E.TEXT_DELTA,
                     "sequence_number": -1, "item_id": msg.item["id"], "output_index": msg.index,
                     "content_index": len(msg.item["content"]), "delta": piece}
        if self._part_type != "refusal":
            ev["logprobs"] = logprobs
        if self.obfuscate:
            self._pad(ev, piece)
        msg.events.append(ev)

    def _close_part(self) -> None:
        msg = self._message
        if msg is None or not self._part_open:
            return
        for piece, lps in self._cut.flush():
            self._text_piece(msg, piece, lps)
        text = "".join(self._text)
        ci = len(msg.item["content"])
        part: dict[str, Any]
        if self._part_type == "refusal":
            part = {"type": "refusal", "refusal": text}
            self._at(msg, E.REFUSAL_DONE, content_index=ci, refusal=text)
        else:
            annotations = sorted((a for annotate in self.annotators for a in annotate(text)),
                                 key=lambda a: a.get("start_index", a.get("index", 0)))
            part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": self._logprobs}
            self._annotations(msg, ci, annotations)
            self._at(msg, E.TEXT_DONE, content_index=ci, text=text, logprobs=self._logprobs)
        msg.item["content"].append(part)
        self._at(msg, E.PART_DONE, content_index=ci, part=part)
        self._text, self._logprobs, self._part_open = [], [], False

    def _annotations(self, seg: _Segment, ci: int, annotations: list[dict[str, Any]]) -> None:
        for i, annotation in enumerate(annotations):
            self._at(seg, E.ANNOTATION_ADDED, content_index=ci, annotation_index=i, annotation=annotation)

    def _close_message(self, status: str = "completed") -> None:
        msg = self._message
        if msg is None:
            return
        self._close_part()
        msg.item["status"] = status
        self._message = None
        self._done(msg)

    def _reasoning_delta(self, ev: m.ReasoningDelta) -> None:
        if self._reasoning is None:
            self._close_message()
            self._close_calls("completed")
            item: Item = {"type": "reasoning", "id": new_id("rs"), "summary": [], "content": []}
            self._reasoning_summary = ev.summary
            self._reasoning = self._add(item, {**item, "summary": [], "content": []})
            if ev.summary:
                self._at(self._reasoning, E.SUMMARY_PART_ADDED, summary_index=0,
                         part={"type": "summary_text", "text": ""})
        if not ev.text:
            return
        self._reasoning_text.append(ev.text)
        if self.quiet:
            return
        for piece, _ in self._reasoning_cut.feed(ev.text):
            self._reasoning_piece(self._reasoning, piece)

    def _reasoning_piece(self, seg: _Segment, piece: str) -> None:
        if self._reasoning_summary:
            self._at(seg, E.SUMMARY_DELTA, summary_index=0, delta=piece)
        else:
            self._at(seg, E.REASONING_DELTA, content_index=0, delta=piece)

    def _close_reasoning(self, encrypted: str | None) -> None:
        seg = self._reasoning
        if seg is None:
            return
        r = seg.item
        for piece, _ in self._reasoning_cut.flush():
            self._reasoning_piece(seg, piece)
        text = "".join(self._reasoning_text)
        if self._reasoning_summary:
            part = {"type": "summary_text", "text": text}
            r["summary"] = [part]
            del r["content"]
            self._at(seg, E.SUMMARY_DONE, summary_index=0, text=text)
            self._at(seg, E.SUMMARY_PART_DONE, summary_index=0, part=part)
        else:
            r["content"] = [{"type": "reasoning_text", "text": text}]
            self._at(seg, E.REASONING_DONE, content_index=0, text=text)
        if encrypted:
            r["encrypted_content"] = encrypted
        self._reasoning, self._reasoning_text = None, []
        self._done(seg)

    # -- replay ----------------------------------------------------------------

    def replay_item(self, item: Item) -> list[Event]:
        """The events the live path made for the finished ``item``."""
        itype = item.get("type")
        if itype == "message":
            seg = self._add(item, {**item, "status": "in_progress", "content": []})
            for ci, part in enumerate(item.get("content") or []):
                self._replay_part(seg, ci, part)
            self._done(seg)
        elif itype == "reasoning":
            seg = self._add(item, {"type": "reasoning", "id": item["id"], "summary": [], "content": []})
            if "content" in item:
                for part in item["content"] or []:
                    for piece, _ in pieces(part.get("text", "")):
                        self._at(seg, E.REASONING_DELTA, content_index=0, delta=piece)
                    self._at(seg, E.REASONING_DONE, content_index=0, text=part.get("text", ""))
            else:
                for si, part in enumerate(item.get("summary") or []):
                    self._at(seg, E.SUMMARY_PART_ADDED, summary_index=si, part={"type": "summary_text", "text": ""})
                    for piece, _ in pieces(part.get("text", "")):
                        self._at(seg, E.SUMMARY_DELTA, summary_index=si, delta=piece)
                    self._at(seg, E.SUMMARY_DONE, summary_index=si, text=part.get("text", ""))
                    self._at(seg, E.SUMMARY_PART_DONE, summary_index=si, part=part)
            self._done(seg)
        elif isinstance(itype, str) and itype in self.kinds:
            kind = self.kinds[itype]
            seg = self._begin(kind, item)
            if kind.stream:
                for piece, _ in pieces(item.get(kind.stream) or ""):
                    self._chunk(kind, seg, piece)
                self._stream_done(kind, seg)
            self._finish(seg)
        else:
            self._done(self._add(item, dict(item)))
        return self._drain()

    def _replay_part(self, seg: _Segment, ci: int, part: dict[str, Any]) -> None:
        ptype = part.get("type", "output_text")
        self._at(seg, E.PART_ADDED, content_index=ci, part=_empty_part(ptype))
        if ptype == "refusal":
            for piece, _ in pieces(part.get("refusal", "")):
                self._at(seg, E.REFUSAL_DELTA, content_index=ci, delta=piece)
            self._at(seg, E.REFUSAL_DONE, content_index=ci, refusal=part.get("refusal", ""))
        else:
            logprobs = part.get("logprobs") or []
            for piece, lps in pieces(part.get("text", ""), logprobs):
                self._at(seg, E.TEXT_DELTA, content_index=ci, delta=piece, logprobs=lps)
            self._annotations(seg, ci, part.get("annotations") or [])
            self._at(seg, E.TEXT_DONE, content_index=ci, text=part.get("text", ""), logprobs=logprobs)
        self._at(seg, E.PART_DONE, content_index=ci, part=part)

    def replay_ending(self, response: Response) -> list[Event]:
        """The terminal events of the stored ``response`` (none while it still runs)."""
        self.response = response
        if response["status"] not in E.FINAL_STATUS:
            return []
        if response["status"] == "failed":
            return self._failure()
        return [self._terminal()]


def replay(response: Response, opening: Response, *, kinds: Mapping[str, ItemKind],
           error_event: bool = True) -> list[Event]:
    """The event stream of the stored ``response``, as its live stream made
    it; ``opening`` is the response as its first events showed it."""
    b = EventBuilder({**opening, "output": []}, kinds=kinds, error_event=error_event)
    events = b.begin()
    for item in response.get("output") or []:
        events += b.replay_item(item)
    return [*events, *b.replay_ending(response)]
