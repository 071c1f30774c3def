"""``responsa serve`` freezes the start-up heap once the app has started,
raises the collector's thresholds and times every collection after that
(``responsa.gcpolicy``). Each test undoes it: a frozen test process would
keep every later test's garbage."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from responsa import gcpolicy
from responsa.api.app import create_app
from responsa.config import load_settings


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if gcpolicy._observe in gc.callbacks:
        gc.callbacks.remove(gcpolicy._observe)


def _pauses(generation: int) -> float:
    return REGISTRY.get_sample_value("responsa_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_start_up_heap_is_frozen_only_when_asked(tmp_path: Path, restored: None) -> None:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path}/r.db")
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings, tune_gc=True)) as client:
        # Everything alive after start-up (modules, schemas, the app) is out of the collector's way.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == gcpolicy.THRESHOLDS
        assert client.get("/health").status_code == 200


def test_collections_after_start_up_are_timed(restored: None) -> None:
    gcpolicy.after_startup()
    before = _pauses(2), _pauses(0)
    gc.collect()
    gc.collect(0)
    assert (_pauses(2), _pauses(0)) == (before[0] + 1, before[1] + 1)
    gcpolicy.after_startup()  # a second start-up (tests, reloads) does not time collections twice
    assert gc.callbacks.count(gcpolicy._observe) == 1
