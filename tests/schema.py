"""Responses held to both readings of the API: the seed documents' OpenAPI fragments (as they
document it) and the official SDK models, closed, so no field either leaves undefined passes."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).parent / "data"
SEEDS = DATA / "mixpeek-openapi-fragments.json"
OFFICIAL = DATA / "official-responses.json"


@cache
def _seed_validators() -> dict[str, Draft202012Validator]:
    document = json.loads(SEEDS.read_text())
    registry: Registry[Any] = Registry().with_resource(
        "urn:seeds", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return {
        name: Draft202012Validator(
            {"$ref": f"urn:seeds#/components/schemas/{name}"}, registry=registry
        )
        for name in document["components"]["schemas"]
    }


@cache
def _official_validators() -> dict[str, Draft202012Validator]:
    schemas = json.loads(OFFICIAL.read_text())
    return {n: Draft202012Validator(s) for n, s in schemas.items() if not n.startswith("_")}


def problems(value: Any, name: str) -> list[str]:
    """Every way ``value`` departs from the seed fragment and the official model of ``name``."""
    checks = [v for v in (_seed_validators().get(name), _official_validators().get(name)) if v]
    assert checks, f"no schema is known for {name}"
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}"
        for validator in checks
        for e in validator.iter_errors(value)
    ]


def assert_matches(value: Any, name: str) -> None:
    found = problems(value, name)
    assert not found, f"response does not match {name}: {found}"
