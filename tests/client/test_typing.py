"""What a type checker sees: ``create(stream=True)`` is a stream of events,
``create()`` / ``create(stream=False)`` a ``Response`` (``@overload``s, as in
openai-python), and an unknown parameter is a type error."""

from __future__ import annotations

from pathlib import Path

import pytest

SNIPPET = '''
from collections.abc import AsyncIterator, Iterator
from typing import assert_type

from responsa.client import AsyncResponsa, Responsa, Response, ResponseEvent


def sync(c: Responsa, flag: bool) -> None:
    assert_type(c.responses.create(model="m", input="x"), Response)
    assert_type(c.responses.create(model="m", stream=False), Response)
    assert_type(c.responses.create(model="m", stream=True), Iterator[ResponseEvent])
    assert_type(c.responses.create(model="m", stream=flag), Response | Iterator[ResponseEvent])
    c.responses.create(model="m", nonsense=1)


async def asynchronous(c: AsyncResponsa) -> None:
    assert_type(await c.responses.create(model="m"), Response)
    assert_type(await c.responses.create(model="m", stream=True), AsyncIterator[ResponseEvent])
'''


@pytest.mark.slow  # runs mypy
def test_stream_overloads_type_check(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    out, err, _ = mypy_api.run(["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
                                str(snippet)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2 and all(":13: error:" in e for e in errors), out + err  # only the unknown one
    assert 'Unexpected keyword argument "nonsense"' in out
