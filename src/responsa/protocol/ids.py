"""Object ids in OpenAI's style: a type prefix and 48 hex digits.

The first 8 digits are the creation second (as in OpenAI's own ids), the
next 5 the microsecond within it (bumped to stay increasing), the other 35 random (140 bits:
unguessable). Ids created one after the other sort one after the other, so
a new row of every index keyed by an id lands on that index's last page
instead of a random page of the whole index: a commit writes one page of
each index for however many responses it holds, and a lone response's
commit touches pages that are already cached (issue 16).
"""

from __future__ import annotations

import secrets
import time

_last = 0


def new_id(prefix: str) -> str:
    global _last
    now = _last = max(time.time_ns() // 1000, _last + 1)  # strictly increasing within the process
    return f"{prefix}_{(now // 1_000_000) & 0xFFFFFFFF:08x}{now % 1_000_000:05x}{secrets.token_hex(18)[:35]}"
