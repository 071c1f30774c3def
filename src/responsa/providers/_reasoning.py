"""Opaque reasoning state, tagged with the provider family that produced it.

A reasoning item's ``encrypted_content`` is only meaningful to the upstream
family that issued it (OpenAI's encrypted reasoning, Anthropic's thinking
signatures): any other upstream rejects it with a 400. A conversation may
switch provider mid-chain, so providers emit their state as
``"<family>:<opaque>"`` and forward only their own family's state. State
without a tag (stored before tagging, or sent by a client that got it
elsewhere) belongs to no family and is never forwarded.
"""

from __future__ import annotations

Family = str
"""``openai`` (Responses API upstreams) or ``anthropic``."""


def tag(family: Family, opaque: str) -> str:
    """``encrypted_content`` for ``opaque`` state issued by ``family``."""
    return f"{family}:{opaque}"


def untag(family: Family, value: object) -> str | None:
    """The opaque state in ``value`` if ``family`` issued it, else None."""
    if not isinstance(value, str):
        return None
    prefix = f"{family}:"
    return value[len(prefix):] if value.startswith(prefix) else None
