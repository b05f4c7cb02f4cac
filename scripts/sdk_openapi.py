"""Rebuild an OpenAPI 3.1 document from one API class of a Mixpeek official Python SDK.

Mixpeek publishes no OpenAPI document with the ``/v1/apps`` paths; its official SDK is generated
from one, and keeps everything needed to rebuild it: each method's path, HTTP method and
parameters (the ``_<method>_serialize`` code), its answers per status (``_response_types_map``),
and pydantic models for every body. What pydantic's JSON schema leaves out, the generator's
``field_validator`` enums and patterns, is read back from the validators' own code.

Run with only the SDK's folder on ``PYTHONPATH`` (the SDK versions share the package name
``mixpeek``); prints the document::

    PYTHONPATH=.venv/sdks/mixpeek-1.3.783 python scripts/sdk_openapi.py mixpeek.api.apps_api AppsApi

It imports nothing of this project, so it runs beside any SDK version.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
import textwrap
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"
SKIPPED_SUFFIXES = ("_with_http_info", "_without_preload_content")
# Where the generated ``_serialize`` code puts each kind of parameter: (OpenAPI ``in``, regex).
PLACES = (
    ("path", r"_path_params\['([\w-]+)'\] = (\w+)"),
    ("query", r"_query_params\.append\(\('([\w-]+)', (\w+)"),
    ("header", r"_header_params\['([\w-]+)'\] = (\w+)"),
)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names, however nested (Optional, Annotated, List)."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) or () for m in _models_in(arg)]


def _schema(annotation: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(annotation).json_schema(ref_template=REF)
    schema.pop("$defs", None)  # every model is a component already
    return schema


def _parameter_schema(annotation: Any) -> dict[str, Any]:
    """A parameter's schema without the null branch: an SDK argument left None is not sent."""
    schema = _schema(annotation)
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**branches[0], **rest}
    return schema


def _responses(source: str, models: Any) -> dict[str, Any]:
    """``_response_types_map`` of the method: status -> model name, ``object`` or None."""
    block = re.search(r"_response_types_map[^{]*\{(.*?)\}", source, re.S)
    assert block is not None, "no _response_types_map"
    answers: dict[str, Any] = {}
    for status, name in re.findall(r"'(\d{3})': \"?(\w+)\"?", block.group(1)):
        if name == "None":
            answers[status] = {"description": "No body"}
            continue
        schema = {"type": "object"} if name == "object" else {"$ref": REF.format(model=name)}
        if name != "object" and not hasattr(models, name):
            raise SystemExit(f"the SDK names a response model {name} it does not define")
        answers[status] = {
            "description": "Successful Response" if status == "200" else name,
            "content": {"application/json": {"schema": schema}},
        }
    return answers


def _operation(api: type, name: str, models: Any) -> tuple[str, str, dict[str, Any], list[Any]]:
    """One method as (path, HTTP method, operation object, the models it names)."""
    function = getattr(api, name)
    source = inspect.getsource(function)
    serialize = inspect.getsource(getattr(api, f"_{name}_serialize"))
    found = re.search(r"method='(\w+)',\s*resource_path='([^']+)'", serialize)
    assert found is not None, f"{name}: no method and path"
    method, path = found.group(1).lower(), found.group(2)
    signature = inspect.signature(function)
    wire = {py: (place, key) for place, rx in PLACES for key, py in re.findall(rx, serialize)}
    body = re.search(r"_body_params = (\w+)", serialize)
    named: list[Any] = []
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": (inspect.getdoc(function) or "").splitlines()[0],
        "parameters": [],
        "responses": _responses(source, models),
    }
    for parameter in signature.parameters.values():
        if parameter.name == "self" or parameter.name.startswith("_"):
            continue
        required = parameter.default is inspect.Parameter.empty
        named += _models_in(parameter.annotation)
        if body is not None and parameter.name == body.group(1):
            operation["requestBody"] = {
                "required": required,
                "content": {"application/json": {"schema": _schema(parameter.annotation)}},
            }
            continue
        place, key = wire[parameter.name]
        operation["parameters"].append(
            {
                "name": key,
                "in": place,
                "required": required or place == "path",
                "schema": _parameter_schema(parameter.annotation),
            }
        )
    for answer in operation["responses"].values():
        ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        if ref:
            named.append(getattr(models, ref.rsplit("/", 1)[1]))
    return path, method, operation, named


# ------------------------------------------------------------ what the validators enforce


def _validator_rules(function: Any) -> dict[str, Any]:
    """The enum (``value not in set([...])``) or pattern (``re.match(r"...", value)``) a
    generated ``field_validator`` enforces, and whether it checks each item of a list. (A
    validator that lets None through needs nothing more: the field's schema allows null.)"""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    rules: dict[str, Any] = {"items": False}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.NotIn):
            target = node.comparators[0]
            if isinstance(target, ast.Call) and getattr(target.func, "id", "") == "set":
                rules["enum"] = ast.literal_eval(target.args[0])
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "match":
            rules["pattern"] = ast.literal_eval(node.args[0])
        if isinstance(node, ast.For):
            rules["items"] = True
    return rules


def _constrain(schema: dict[str, Any], rules: dict[str, Any]) -> None:
    """Add the rules to the non-null branch of a property schema (to its items for a list)."""
    branches = schema.get("anyOf") or [schema]
    for branch in branches:
        if branch.get("type") == "null":
            continue
        target = branch.get("items", branch) if rules["items"] else branch
        if "enum" in rules:
            target["enum"] = rules["enum"]
        if "pattern" in rules:
            target["pattern"] = rules["pattern"]


def _apply_validators(components: dict[str, Any], models: Any) -> None:
    for name, schema in components.items():
        model = getattr(models, name, None)
        if model is None or not hasattr(model, "__pydantic_decorators__"):
            continue
        for validator in model.__pydantic_decorators__.field_validators.values():
            rules = _validator_rules(validator.func)
            for field_name in validator.info.fields:
                alias = model.model_fields[field_name].alias or field_name
                prop = schema.get("properties", {}).get(alias)
                if prop is not None and ("enum" in rules or "pattern" in rules):
                    _constrain(prop, rules)


def build(module_name: str, class_name: str) -> dict[str, Any]:
    api = getattr(importlib.import_module(module_name), class_name)
    models = importlib.import_module("mixpeek.models")
    paths: dict[str, dict[str, Any]] = {}
    named: list[Any] = []
    for name in sorted(vars(api)):
        if name.startswith("_") or name.endswith(SKIPPED_SUFFIXES):
            continue
        path, method, operation, found = _operation(api, name, models)
        paths.setdefault(path, {})[method] = operation
        named += found
    unique = list(dict.fromkeys(named))
    _, definitions = models_json_schema([(m, "validation") for m in unique], ref_template=REF)
    components = definitions.get("$defs", {})
    _apply_validators(components, models)
    version = importlib.import_module("mixpeek").__version__
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Mixpeek API ({class_name} of the official SDK)", "version": version},
        "servers": [{"url": "https://api.mixpeek.com"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"BearerAuth": []}],
    }


if __name__ == "__main__":
    print(json.dumps(build(sys.argv[1], sys.argv[2]), indent=1, sort_keys=True))
