"""The parsed items of finished responses, kept per process (issue 16).

Each turn of a ``previous_response_id`` chain reads every earlier
response's items again; reading and parsing their JSON was the largest part
of what a turn 1,000 responses deep cost on top of a first turn (~2.3 ms of
~7 ms of CPU). A finished response's items never change, so each is read
and parsed once per process. The chain query still walks every hop (the
database stays the judge of what exists and whose it is, so a deleted
response, a broken link or another tenant's response is never served from
here) and brings the tip's items; only the items of older hops not kept
here are read, by a second statement (``SQLStore.load_context``).

What may be kept: hops whose status, as the chain statement read it, is
final (``completed``/``incomplete``: their rows are written once, by the
turn that finished them). ``forget`` drops a hop this process
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
from collections.abc import Mapping, Sequence
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

    def kept(self, tenant: str, chain: Sequence[Sequence[Any]]) -> tuple[dict[str, list[Item]], list[str]]:
        """For the chain query's rows ``(response id, status, item JSON)``
        (one row per hop, oldest first, then the tip's rows with its items):
        the kept items of its hops, as a snapshot (what is evicted afterwards
        stays in it; nothing is reordered, so it may be taken on the store's
        thread), and the older hops whose items must be read."""
        kept: dict[str, list[Item]] = {}
        missing: list[str] = []
        tip = chain[-1][0]
        for row in chain:
            rid = row[0]
            got = self._kept.get((tenant, rid))
            if got is not None:
                kept[rid] = got[0]
            elif rid != tip:
                missing.append(rid)
        return kept, missing

    def context(self, tenant: str, chain: Sequence[Sequence[Any]], kept: Mapping[str, list[Item]],
                fetched: Mapping[str, list[str]]) -> list[Item]:
        """The chain's items, from ``kept`` (``self.kept``) and the item JSON
        of the tip's rows and of the older hops ``fetched`` (by id)."""
        out: list[Item] = []
        tip = chain[-1][0]
        first_tip_row = 0
        for rid, status, _ in chain:
            if rid == tip:
                break
            out += self._hop((tenant, rid), status, kept.get(rid), fetched.get(rid, ()))
            first_tip_row += 1
        tip_rows = chain[first_tip_row:]
        raws = [row[2] for row in tip_rows if row[2] is not None]
        out += self._hop((tenant, tip), tip_rows[0][1], kept.get(tip), raws)
        return out

    def _hop(self, key: tuple[str, str], status: str, kept: list[Item] | None, raws: Sequence[str]) -> list[Item]:
        if kept is not None:
            if key in self._kept:
                self._kept.move_to_end(key)
            return kept
        items = [orjson.loads(raw) for raw in raws]
        if status in FINAL:
            self._keep(key, items, sum(map(len, raws)))
        return items

    def forget(self, tenant: str, response_id: str) -> None:
        dropped = self._kept.pop((tenant, response_id), None)
        if dropped is not None:
            self._bytes -= dropped[1]

    def _keep(self, key: tuple[str, str], items: list[Item], size: int) -> None:
        if size > self._max:
            return
        self.forget(*key)
        self._kept[key] = (items, size)
        self._bytes += size
        while self._bytes > self._max:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._bytes -= dropped
