"""``store.parsed``: the chain query's rows give the same items whether a
hop is parsed or kept; only finished hops are kept, within the byte bound."""

from __future__ import annotations

from typing import Any

import orjson

from responsa.store.parsed import ParsedHops


def _rows(hops: list[tuple[str, str, int]]) -> list[tuple[str, str, str]]:
    """``(id, status, number of items)`` per hop -> the chain query's rows."""
    return [(rid, status, orjson.dumps({"id": f"{rid}_{n}", "type": "message", "text": "x" * 50}).decode())
            for rid, status, count in hops for n in range(count)]


def _expected(rows: list[tuple[str, str, str]]) -> list[Any]:
    return [orjson.loads(raw) for _, _, raw in rows]


def test_kept_and_parsed_hops_read_alike() -> None:
    parsed = ParsedHops()
    rows = _rows([("r1", "completed", 2), ("r2", "incomplete", 1), ("r3", "in_progress", 2), ("r4", "completed", 3)])
    first = parsed.context("t", rows)
    second = parsed.context("t", rows)
    assert first == second == _expected(rows)
    same = [a is b for a, b in zip(first, second, strict=True)]
    assert same == [True, True, True, False, False, True, True, True]  # the unfinished hop is parsed each time
    assert parsed.context("other tenant", rows) == _expected(rows)


def test_the_bound_keeps_the_most_recent_hops() -> None:
    one_hop = len(_rows([("r", "completed", 1)])[0][2])
    parsed = ParsedHops(max_bytes=3 * (one_hop + 1))  # (ids "r0".."r9": a byte longer than "r")
    rows = _rows([(f"r{n}", "completed", 1) for n in range(10)])
    for _ in range(3):
        assert parsed.context("t", rows) == _expected(rows)
    first, second = parsed.context("t", rows[-3:]), parsed.context("t", rows[-3:])
    assert all(a is b for a, b in zip(first, second, strict=True))
    oldest = parsed.context("t", rows[:1])[0]  # long out: parsed again, then kept
    assert oldest == _expected(rows[:1])[0] and oldest is not first[0]
    big = _rows([("huge", "completed", 5)])
    assert parsed.context("t", big) == _expected(big)  # larger than the bound: parsed, never kept
    assert parsed.context("t", big)[0] is not parsed.context("t", big)[0]
