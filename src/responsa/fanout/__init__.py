"""Live event fan-out (the live tail of background responses, and cancel
signals), one interface and two implementations: ``LocalFanout`` in one
process, ``RedisFanout`` across replicas over Redis pub/sub. ``from_url``
picks one."""

from __future__ import annotations

from responsa.fanout.base import Event, Fanout, Lagged
from responsa.fanout.local import LocalFanout


def from_url(redis_url: str | None) -> Fanout:
    """Redis carries live events and cancels across replicas; one process needs nothing."""
    if redis_url:
        from responsa.fanout.redis import RedisFanout

        return RedisFanout(redis_url)
    return LocalFanout()


__all__ = ["Event", "Fanout", "Lagged", "LocalFanout", "from_url"]
