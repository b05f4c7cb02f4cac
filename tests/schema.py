"""Responses held to both readings of the API: the seed documents' OpenAPI fragments (as they
document it) and the contract of their route family (the apps SDK's models, or the published
plugin spec), closed, so no field either leaves undefined passes."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mixpeek_emulator import contract
from mixpeek_emulator.contract import Family

SEEDS = Path(__file__).parent / "data" / "mixpeek-openapi-fragments.json"
# How the published plugin spec names the models of its namespaced routes.
NAMESPACED = "api__namespaces__plugins__models__"


def _validators(document: dict[str, Any], uri: str) -> dict[str, Draft202012Validator]:
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return {
        name: Draft202012Validator({"$ref": f"{uri}#/components/schemas/{name}"}, registry=registry)
        for name in document["components"]["schemas"]
    }


@cache
def _seed_validators() -> dict[str, Draft202012Validator]:
    return _validators(json.loads(SEEDS.read_text()), "urn:seeds")


@cache
def _contract_validators(family: Family) -> dict[str, Draft202012Validator]:
    return _validators(contract.document(family), f"urn:contract:{family}")


def _contract_validator(name: str, family: Family | None) -> Draft202012Validator | None:
    """``name`` in the contract of ``family`` (the apps contract first when not given); the
    plugin spec's namespaced models are found by their short names too."""
    for fam in [family] if family else list(contract.FAMILIES):
        found = _contract_validators(fam)
        validator = found.get(name) or found.get(NAMESPACED + name)
        if validator is not None:
            return validator
    return None


def problems(value: Any, name: str, family: Family | None = None) -> list[str]:
    """Every way ``value`` departs from the seed fragment and the contract's model ``name``."""
    checks = [v for v in (_seed_validators().get(name), _contract_validator(name, family)) if v]
    assert checks, f"no schema is known for {name}"
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}"
        for validator in checks
        for e in validator.iter_errors(value)
    ]


def assert_matches(value: Any, name: str, family: Family | None = None) -> None:
    found = problems(value, name, family)
    assert not found, f"response does not match {name}: {found}"
