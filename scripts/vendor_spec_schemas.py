"""Regenerate ``src/responsa/api/openresponses.json``: the Open
Responses spec's schemas for what Responsa returns (the Response object,
its items, streaming events, errors), cut from the spec the test suite
validates every response with (``tests/spec/openapi.json``), so
``/openapi.json`` describes responses with exactly those schemas.

    python scripts/vendor_spec_schemas.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "spec" / "openapi.json"
OUT = ROOT / "src" / "responsa" / "api" / "openresponses.json"


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def main() -> None:
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    roots = ["ResponseResource", "ErrorPayload", *(n for n in schemas if n.endswith("StreamingEvent"))]
    keep: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(found)
    out = {name: schemas[name] for name in sorted(keep)}
    # Generator artefact in the spec (tests/helpers.py patches it the same way): a json_schema
    # format's "schema" is typed null-only, but the Response echoes the real schema object.
    fmt = json.loads(json.dumps(out["JsonSchemaResponseFormat"]))
    fmt["properties"]["schema"] = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    out["JsonSchemaResponseFormat"] = fmt
    OUT.write_text(json.dumps({"source": "tests/spec/openapi.json (Open Responses)", "schemas": out}, indent=1,
                              sort_keys=True) + "\n")
    print(f"{len(out)} schemas -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
