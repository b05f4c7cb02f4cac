"""The two contracts the emulator answers to, read once: which operations exist, what their
request bodies accept, and which family (apps or plugins) a path belongs to.

- ``contracts/apps.json``: the ``/v1/apps`` operations as the official SDK ``mixpeek`` 1.3.783
  defines them, rebuilt from its code by ``scripts/contracts.py``.
- ``contracts/plugins.json``: the plugin operations of Mixpeek's published OpenAPI document
  (``mixpeek/docs``, ``api-reference/openapi.json``, version 0.81), verbatim.

Both are used as amended below. Each amendment is where two official readings disagree and the
newer or more specific one is followed; its docstring names both. Every object with declared
properties is closed, since the API refuses undeclared request keys (422 ``extra_forbidden``,
since 2026-11-02) and the emulator must answer with no field the contract leaves undefined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

Family = Literal["apps", "plugins"]
FAMILIES: Final[tuple[Family, ...]] = ("apps", "plugins")
METHODS: Final = ("get", "put", "post", "delete", "patch")
DEPLOY: Final = "/v1/namespaces/{namespace_id}/plugins/{plugin_id}/deploy"
UPLOAD: Final = "api__namespaces__plugins__models__CreatePluginUploadRequest"
LOG_STREAM: Final = "/v1/apps/{app_id}/deploys/{deploy_id}/logs/stream"
PLUGIN_ARCHIVE_LIMIT: Final = 524_288_000
PLUGIN_ROUTES: Final = re.compile(r"^/v1/(namespaces/[^/]+/)?plugins(/|$)")


def _archive_limit(document: dict[str, Any]) -> None:
    """A plugin archive may be up to 500 MB: SDK 0.81.1's ``CreatePluginUploadRequest`` and the
    plugin docs ("500 MB / 1,000 files") say so; the published spec 0.81 still says 100 MB."""
    size = document["components"]["schemas"][UPLOAD]["properties"]["file_size_bytes"]
    size["anyOf"][0]["maximum"] = PLUGIN_ARCHIVE_LIMIT


def _deployment_type(document: dict[str, Any]) -> None:
    """Deploy takes ``?deployment_type=realtime|batch_only``: SDK 0.81.1's
    ``deploy_plugin_namespaces`` and the docs' curl examples send it; spec 0.81 omits it."""
    document["paths"][DEPLOY]["post"]["parameters"].append(
        {
            "name": "deployment_type",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["realtime", "batch_only"]},
        }
    )


def _event_stream(document: dict[str, Any]) -> None:
    """The deploy log stream answers ``text/event-stream`` (the docs page on build logs, and the
    operation's own description); the SDK and seed 004 declare ``application/json`` ``{}``.
    Each event, as OpenAPI 3.1 has the schema describe one: a log line, ``data: {"ts", "line"}``,
    then ``event: done`` with ``data: {}``."""
    line = {
        "type": "object",
        "required": ["ts", "line"],
        "properties": {"ts": {"type": "number"}, "line": {"type": "string"}},
    }
    event = {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": "message"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": line,
                    },
                },
            },
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {"event": {"const": "done"}, "data": {"const": "{}"}},
            },
        ]
    }
    answer = document["paths"][LOG_STREAM]["get"]["responses"]["200"]
    answer["content"] = {"text/event-stream": {"schema": event}}


def _sdk_only_operations(document: dict[str, Any]) -> None:
    """Two plugin operations SDK 0.81.1 documents and spec 0.81 does not:
    ``reconfigure_namespace_id_plugins`` (``POST .../plugins/reconfigure``) and
    ``test_realtime_inference_namespaces_id_plugins`` (``POST .../{plugin_id}/realtime/test``).
    The emulator serves neither; documented, they answer 501 instead of a 405 or 404 that would
    look like a wrong path. Their bodies are left undescribed: nothing reads them."""
    base = "/v1/namespaces/{namespace_id}/plugins"
    for path, operation_id in (
        (f"{base}/reconfigure", "reconfigure_namespace_id_plugins"),
        (f"{base}/{{plugin_id}}/realtime/test", "test_realtime_inference_namespaces_id_plugins"),
    ):
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", path)
        ]
        answer = {"content": {"application/json": {"schema": {"type": "object"}}}}
        document["paths"][path] = {
            "post": {
                "operationId": operation_id,
                "parameters": parameters,
                "responses": {"200": {"description": "Successful Response", **answer}},
            }
        }


AMENDMENTS: Final[dict[Family, tuple[Callable[[dict[str, Any]], None], ...]]] = {
    "apps": (_event_stream,),
    "plugins": (_archive_limit, _deployment_type, _sdk_only_operations),
}


def closed(schema: Any) -> Any:
    """Every object with declared properties refuses other keys; maps stay open."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def published(family: Family) -> dict[str, Any]:
    """The contract as stored, before any amendment."""
    text = resources.files(__package__).joinpath("contracts", f"{family}.json").read_text()
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _document(family: Family) -> str:
    document = published(family)
    for amend in AMENDMENTS[family]:
        amend(document)
    return json.dumps(closed(document))


def document(family: Family) -> dict[str, Any]:
    """The contract as the emulator follows it: amended and closed (a fresh copy)."""
    result: dict[str, Any] = json.loads(_document(family))
    return result


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    """A contract's pattern with the ECMA-262 meaning its writers gave it: ``$`` is the end of
    the text (Python's also matches before a final newline, so ``"my-site\\n"`` passed) and
    ``\\d`` an ASCII digit."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern), re.ASCII)


# The JSON Schema validator with the contracts' regular expressions read as ECMA-262.
Validator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)
BODY_MEDIA: Final = ("application/json", "multipart/form-data")


@dataclass(frozen=True)
class Operation:
    family: Family
    method: str  # upper case, as a request has it
    path: str  # the template, as both contracts and the routes spell it
    operation_id: str
    body: Any  # a Validator of the documented request body, or None
    body_media: str | None  # its media type: JSON, or a multipart form
    body_required: bool


@cache
def operations() -> tuple[Operation, ...]:
    """Every documented operation of both families."""
    found = []
    for family in FAMILIES:
        doc = document(family)
        uri = f"urn:mixpeek:{family}"
        registry: Registry[Any] = Registry().with_resource(
            uri, Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        for path, item in doc["paths"].items():
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                body = op.get("requestBody", {})
                media = next((m for m in BODY_MEDIA if m in body.get("content", {})), None)
                validator = None
                if media is not None:
                    pointer = "/".join(
                        p.replace("~", "~0").replace("/", "~1")
                        for p in ("paths", path, method, "requestBody", "content", media)
                    )
                    validator = Validator({"$ref": f"{uri}#/{pointer}/schema"}, registry=registry)
                found.append(
                    Operation(
                        family=family,
                        method=method.upper(),
                        path=path,
                        operation_id=op["operationId"],
                        body=validator,
                        body_media=media,
                        body_required=bool(body.get("required")),
                    )
                )
    return tuple(found)


def operation(method: str, path: str) -> Operation | None:
    """The documented operation a request of this method and concrete path is for, if any; a
    literal segment wins over a parameter (``plugins/available`` over ``plugins/{plugin_id}``)."""
    found = [o for o in operations() if o.method == method and _pattern(o.path).match(path)]
    return min(found, key=lambda o: o.path.count("{"), default=None)


def methods_of(path: str) -> list[str]:
    """The methods documented for the route template this concrete path is (the most specific
    one that matches, as ``operation`` chooses), in the usual order."""
    templates = {o.path for o in operations() if _pattern(o.path).match(path)}
    if not templates:
        return []
    template = min(templates, key=lambda t: t.count("{"))
    return [o.method for o in operations() if o.path == template]


@cache
def _pattern(template: str) -> re.Pattern[str]:
    """The template as Starlette matches a path (``^...$``, a parameter is ``[^/]+``), so the
    operation found is the one whose route serves the request, even for a path that ends in a
    newline."""
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def family_of(path: str) -> Family:
    """Which contract a request's path belongs to: plugin routes answer in spec 0.81's shapes,
    everything else in the apps SDK's."""
    return "plugins" if PLUGIN_ROUTES.match(path) else "apps"
