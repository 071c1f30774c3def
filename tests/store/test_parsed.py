"""``store.parsed``: a chain's items are the same whether a hop is parsed
or kept; only finished hops are kept, within the byte bound."""

from __future__ import annotations

from typing import Any

import orjson

from responsa.store.parsed import ParsedHops

Hop = tuple[str, str, int]  # (response id, status, number of items)


def _raws(rid: str, count: int) -> list[str]:
    return [orjson.dumps({"id": f"{rid}_{n}", "type": "message", "text": "x" * 50}).decode() for n in range(count)]


def _load(parsed: ParsedHops, tenant: str, hops: list[Hop]) -> list[Any]:
    """What ``SQLStore.load_context`` does with its two statements, oldest hop first."""
    *older, (tip, tip_status, tip_count) = hops
    chain: list[tuple[str, str, str | None]] = [(rid, status, None) for rid, status, _ in older]
    chain += [(tip, tip_status, raw) for raw in _raws(tip, tip_count)] or [(tip, tip_status, None)]
    kept, missing = parsed.kept(tenant, chain)
    assert missing == [rid for rid, _, _ in older if rid not in kept]
    fetched = {rid: _raws(rid, count) for rid, _, count in older if rid in missing}
    return parsed.context(tenant, chain, kept, fetched)


def _expected(hops: list[Hop]) -> list[Any]:
    return [orjson.loads(raw) for rid, _, count in hops for raw in _raws(rid, count)]


def test_kept_and_parsed_hops_read_alike() -> None:
    parsed = ParsedHops()
    hops = [("r1", "completed", 2), ("r2", "incomplete", 1), ("r3", "in_progress", 2), ("r0", "completed", 0),
            ("r4", "completed", 3)]
    first, second = _load(parsed, "t", hops), _load(parsed, "t", hops)
    assert first == second == _expected(hops)
    same = [a is b for a, b in zip(first, second, strict=True)]
    assert same == [True, True, True, False, False, True, True, True]  # the unfinished hop is parsed each time
    assert _load(parsed, "other tenant", hops) == _expected(hops)
    assert _load(parsed, "t", [("r3", "completed", 2)]) == _expected([("r3", "completed", 2)])


def test_the_bound_keeps_the_most_recent_hops() -> None:
    one_hop = len(_raws("r0", 1)[0])
    parsed = ParsedHops(max_bytes=3 * one_hop)
    hops: list[Hop] = [(f"r{n}", "completed", 1) for n in range(10)]
    for _ in range(3):
        assert _load(parsed, "t", hops) == _expected(hops)
    first, second = _load(parsed, "t", hops[-3:]), _load(parsed, "t", hops[-3:])
    assert all(a is b for a, b in zip(first, second, strict=True))
    oldest = _load(parsed, "t", hops[:1])[0]  # long out: parsed again
    assert oldest == _expected(hops[:1])[0] and oldest is not first[0]
    big: list[Hop] = [("huge", "completed", 5)]
    assert _load(parsed, "t", big) == _expected(big)  # larger than the bound: parsed, never kept
    assert _load(parsed, "t", big)[0] is not _load(parsed, "t", big)[0]
