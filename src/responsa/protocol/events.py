"""Event-type names of the Responses stream, in one place.

Only ``engine.events.EventBuilder`` makes events; everything else (the
SSE/WebSocket writers, the background runner, fan-out, tests) only reads
their ``type`` and compares it with these names. Tool types declare the
names of their own item events in their ``ItemKind`` (``tools.base``).
"""

from __future__ import annotations

from typing import Final

CREATED: Final = "response.created"
QUEUED: Final = "response.queued"
IN_PROGRESS: Final = "response.in_progress"
COMPLETED: Final = "response.completed"
INCOMPLETE: Final = "response.incomplete"
FAILED: Final = "response.failed"
ERROR: Final = "error"

ITEM_ADDED: Final = "response.output_item.added"
ITEM_DONE: Final = "response.output_item.done"

PART_ADDED: Final = "response.content_part.added"
PART_DONE: Final = "response.content_part.done"
TEXT_DELTA: Final = "response.output_text.delta"
TEXT_DONE: Final = "response.output_text.done"
ANNOTATION_ADDED: Final = "response.output_text.annotation.added"
REFUSAL_DELTA: Final = "response.refusal.delta"
REFUSAL_DONE: Final = "response.refusal.done"

REASONING_DELTA: Final = "response.reasoning.delta"
REASONING_DONE: Final = "response.reasoning.done"
SUMMARY_PART_ADDED: Final = "response.reasoning_summary_part.added"
SUMMARY_PART_DONE: Final = "response.reasoning_summary_part.done"
SUMMARY_DELTA: Final = "response.reasoning_summary_text.delta"
SUMMARY_DONE: Final = "response.reasoning_summary_text.done"

TERMINAL: Final = frozenset({COMPLETED, INCOMPLETE, FAILED})
"""Exactly one of these ends every turn's stream (a cancelled background
response ends with ``response.failed`` whose response status is ``cancelled``)."""

FINAL_STATUS: Final = {"completed": COMPLETED, "incomplete": INCOMPLETE, "failed": FAILED,
                       "cancelled": FAILED}
"""The terminal event of a response that ended with this status."""
