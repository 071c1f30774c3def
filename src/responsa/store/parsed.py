"""The parsed items of finished responses, kept per process (issue 16).

Each turn of a ``previous_response_id`` chain reads every earlier
response's items again; parsing their JSON was the largest part of what a
turn 1,000 responses deep cost on top of a first turn (~1.3 ms of ~7 ms of
CPU). A finished response's items never change, so each is parsed once per
process. The chain query still returns every hop's rows: the database stays
the judge of what exists and whose it is, so a deleted response, a broken
link or another tenant's response is never served from here; only the
parsing is skipped.

What may be kept: hops whose status, read in the same statement as their
items, is final (``completed``/``incomplete``: their rows are written once,
by the turn that finished them). ``forget`` drops a hop this process
rewrites or deletes; response ids are random and never reissued, so
another replica's delete leaves only an unreachable entry that ages out.

The items are shared by every turn that reads them, like the history the
WebSocket mode keeps per connection: the engine never changes a history
item in place (every view, file inlining and truncation builds new items
or lists).

Bounded by the JSON bytes kept (least recently used first out): parsed,
small items take ~5x their JSON in memory, so the default is ~40 MB at most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from responsa.store.base import Item

FINAL = frozenset({"completed", "incomplete"})
MAX_BYTES = 8 << 20


class ParsedHops:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._kept: OrderedDict[tuple[str, str], tuple[list[Item], int]] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def context(self, tenant: str, rows: Sequence[Sequence[Any]]) -> list[Item]:
        """The items of the chain query's rows ``(response id, status, item
        JSON)``, in their order (each hop's rows together)."""
        out: list[Item] = []
        hop: str | None = None
        served = False  # the current hop came from here: skip its rows
        parsing: list[Item] | None = None  # the current hop's items, when parsed here and final
        size = 0
        for rid, status, raw in rows:
            if rid != hop:
                if parsing is not None:
                    self._keep((tenant, hop or ""), parsing, size)
                hop, served, parsing, size = rid, False, None, 0
                kept = self._kept.get((tenant, rid))
                if kept is not None:
                    self._kept.move_to_end((tenant, rid))
                    out += kept[0]
                    served = True
                    continue
                if status in FINAL:
                    parsing = []
            elif served:
                continue
            item = orjson.loads(raw)
            out.append(item)
            if parsing is not None:
                parsing.append(item)
                size += len(raw)
        if parsing is not None:
            self._keep((tenant, hop or ""), parsing, size)
        return out

    def forget(self, tenant: str, response_id: str) -> None:
        dropped = self._kept.pop((tenant, response_id), None)
        if dropped is not None:
            self._bytes -= dropped[1]

    def _keep(self, key: tuple[str, str], items: list[Item], size: int) -> None:
        if size > self._max:
            return
        self._kept[key] = (items, size)
        self._bytes += size
        while self._bytes > self._max:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._bytes -= dropped
