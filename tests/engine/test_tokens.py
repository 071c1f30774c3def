"""``tokens.upper_bound`` lets ``truncation`` skip the tokenizer: it must
never be below the exact count, or an oversized context would go upstream
untruncated."""

from __future__ import annotations

import pytest

from responsa.engine import tokens
from responsa.protocol.types import Item

TEXTS = ["plain ASCII words", "日本語のテキストと絵文字 🎉🎉🎉", "ĉu ŝi ĝuas? ÀÉÎÕÜ", "\x00\x01\t\n" * 8, "🎉" * 50,
         '{"key": [1, 2, 3], "nested": {"a": "b"}}', "a" * 1000, " " * 300]


def _items(text: str) -> list[Item]:
    return [
        {"type": "message", "role": "user", "content": text},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text},
                                                        {"type": "input_image", "image_url": "https://x/y.png"},
                                                        {"type": "input_image", "image_url": "u", "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text},
                                                             {"type": "refusal", "refusal": text}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": text},
        {"type": "function_call_output", "call_id": "c", "output": text},
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": text}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": text}]},
        {"type": "web_search_call", "id": "ws", "action": {"query": text}},
    ]


@pytest.mark.parametrize("model", ["gpt-4o", "some-other-model"])
@pytest.mark.parametrize("text", TEXTS)
def test_the_bound_is_never_below_the_count(model: str, text: str) -> None:
    items = _items(text)
    tools = [{"type": "function", "name": "f", "description": text}]
    assert tokens.upper_bound(items, text, tools) >= tokens.count(items, text, tools, model)
    for item in items:
        assert tokens.upper_bound([item], None, []) >= tokens.count([item], None, [], model)


def test_the_bound_is_tight_enough_for_a_long_history_of_short_messages() -> None:
    """The point of the bound: 2,000 short messages (a 1,000-turn chat) fit a
    128k window without tokenizing."""
    items: list[Item] = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                                         "text": f"You said: question {n}"}]}
                         for n in range(2000)]
    assert tokens.upper_bound(items, None, []) < 128_000
