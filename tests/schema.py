"""A small JSON Schema checker for the OpenAPI fragments in tests/data (the subset they use)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FRAGMENTS = Path(__file__).parent / "data" / "mixpeek-openapi-fragments.json"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


@cache
def schemas() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FRAGMENTS.read_text())["components"]["schemas"]
    return data


def problems(value: Any, schema: Any, where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``schema`` (a schema or a component name)."""
    if isinstance(schema, str):
        return problems(value, schemas()[schema], where)
    if "$ref" in schema:
        return problems(value, schema["$ref"].rsplit("/", 1)[-1], where)
    if "anyOf" in schema:
        options = [problems(value, option, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else min(options, key=len)
    found: list[str] = []
    kind = schema.get("type")
    if kind:
        allowed = _TYPES[kind]
        if not isinstance(value, allowed) or (
            kind in ("integer", "number") and isinstance(value, bool)
        ):
            return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}: missing required {key!r}")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                found += problems(item, props[key], f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += problems(item, schema["additionalProperties"], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{i}]")
    return found


def assert_matches(value: Any, name: str) -> None:
    found = problems(value, name)
    assert not found, f"response does not match {name}: {found}"
