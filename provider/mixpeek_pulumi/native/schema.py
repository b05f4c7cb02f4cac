"""The native provider's Pulumi package schema, read off the typed input and state models.

The schema's property names are the models' field names in camelCase (the generated Python SDK
turns them back into the snake_case the dynamic resources use); its types, required inputs,
secrets and descriptions all come from ``spec``, so the two front doors cannot drift apart.
``sdk/schema.json`` is this module's output, committed for ``pulumi package gen-sdk``.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import itertools
import json
import re
import textwrap
import types
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .._version import __version__
from ..kinds.base import AnyKind
from ..kinds.functions import FUNCTIONS, Function
from ..kinds.registry import KINDS
from ..kinds.spec import change_of, is_secret

PACKAGE: Final = "mixpeek"
REPOSITORY: Final = "https://github.com/mixpeek/mixpeek-pulumi"
PLUGIN_DOWNLOAD_URL: Final = "github://api.github.com/mixpeek/mixpeek-pulumi"
"""Where the engine downloads the plugin when it is not installed: the GitHub release tagged
``v<version>`` of the repository, asset ``pulumi-resource-mixpeek-v<version>-<os>-<arch>.tar.gz``.
A program points elsewhere with the ``pluginDownloadURL`` resource option, a machine with
``PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES``, a person with ``pulumi plugin install --server``."""
GO_IMPORT: Final = "github.com/mixpeek/mixpeek-pulumi/sdk/go/mixpeek"
README_TAIL: Final = """\
This package is the SDK of the native provider `pulumi-resource-mixpeek`. The engine downloads
the plugin from the GitHub release of this version; to install it yourself:

    pulumi plugin install resource mixpeek <version> --file pulumi-resource-mixpeek-v<version>-linux-amd64.tar.gz

Configure it with `pulumi config set --secret mixpeek:apiKey <key>` (or `MIXPEEK_API_KEY`) and,
for plugins or the local emulator, `pulumi config set mixpeek:baseUrl <url>`.

Documentation: https://github.com/mixpeek/mixpeek-pulumi/tree/main/docs
"""


def readme() -> str:
    """The SDKs' README: each kind in one line (its summary), then how to install and configure."""
    kinds = "\n".join(f"- `{kind.name}`: {kind.summary}" for kind in KINDS.values())
    return (
        f"Deploy [Mixpeek](https://mixpeek.com) Apps and Plugins from Pulumi.\n\n{kinds}\n\n"
        + README_TAIL
    )


CHANGES: Final[dict[str, str]] = {
    "replace": "Changing it replaces the resource.",
    "update": "Changing it updates the resource in place.",
    "none": "Changing it updates the resource in place and only records the new value: nothing "
    "is sent to the service.",
    "computed": "Computed by the provider from the inputs (`pulumi preview` shows it); the diff "
    "compares it.",
}
SAYS_CHANGE: Final = re.compile(
    r"Changing it (replaces|is an update|updates)|replaces the resource"
)
OUTPUT_ONLY: Final = "Output: set by the provider from what the service reports."
INTERNAL: Final = frozenset({"resource_name"})
"""Fields the front door fills itself (the resource's name comes from its URN)."""
CONFIG: Final[dict[str, dict[str, Any]]] = {
    "apiKey": {
        "type": "string",
        "secret": True,
        "description": "The Mixpeek API key; falls back to the `MIXPEEK_API_KEY` environment "
        "variable, which keeps it out of the stack's state altogether.",
    },
    "baseUrl": {
        "type": "string",
        "description": "The Mixpeek API endpoint; falls back to `MIXPEEK_BASE_URL`, then "
        "https://api.mixpeek.com.",
    },
    "skipCredentialsValidation": {
        "type": "boolean",
        "description": "Skip the check of the API key the provider makes with one cheap call "
        "the first time a resource needs the service (previews too), for a preview that works "
        "offline; falls back to `MIXPEEK_SKIP_CREDENTIALS_VALIDATION`.",
    },
}


def token(kind: AnyKind) -> str:
    return f"{PACKAGE}:index:{kind.name}"


def type_token(model: type[BaseModel]) -> str:
    return f"{PACKAGE}:index:{model.__name__}"


def object_types() -> dict[str, Any]:
    """The nested input types (``verify``), each an object of camelCase properties, and the
    objects inside them (a list's items too)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        annotation = _strip_optional(annotation)
        if get_origin(annotation) is list:
            visit(get_args(annotation)[0])
        elif (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and type_token(annotation) not in found
        ):
            found[type_token(annotation)] = annotation
            for inner in annotation.model_fields.values():
                visit(inner.annotation)

    for kind in KINDS.values():
        for field in kind.inputs.model_fields.values():
            visit(field.annotation)
    return {
        name: {
            "type": "object",
            "description": re.sub(r"``([^`]+)``", r"`\1`", " ".join((model.__doc__ or "").split())),
            "properties": {camel(n): prop(f) for n, f in documented(model).items()},
        }
        for name, model in sorted(found.items())
    }


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def schema() -> dict[str, Any]:
    """The whole package schema, as ``pulumi package gen-sdk`` and ``GetSchema`` take it."""
    return {
        "name": PACKAGE,
        "displayName": "Mixpeek",
        "version": __version__,
        "description": "Deploy Mixpeek Apps and Plugins from any Pulumi language.",
        "keywords": ["pulumi", "mixpeek", "category/cloud", "kind/native"],
        "homepage": "https://mixpeek.com",
        "repository": REPOSITORY,
        "license": "Apache-2.0",
        "publisher": "Mixpeek",
        "pluginDownloadURL": PLUGIN_DOWNLOAD_URL,
        "config": {"variables": CONFIG},
        "provider": {
            "description": "The Mixpeek provider: where the API is and the key it takes.",
            "inputProperties": CONFIG,
            "properties": {"baseUrl": CONFIG["baseUrl"]},
        },
        "resources": {token(kind): resource(kind) for kind in KINDS.values()},
        "functions": {f"{PACKAGE}:index:{f.name}": function(f) for f in FUNCTIONS.values()},
        "types": object_types(),
        "language": {
            "python": {
                "packageName": "pulumi_mixpeek",
                "requires": {"pulumi": ">=3.139.0,<4.0.0"},
                "respectSchemaVersion": True,
                "pyproject": {"enabled": True},
                "readme": readme(),
            },
            "nodejs": {
                "packageName": "@mixpeek/pulumi",
                "dependencies": {"@pulumi/pulumi": "^3.139.0"},
                "respectSchemaVersion": True,
                "readme": readme(),
            },
            "go": {
                "importBasePath": GO_IMPORT,
                "respectSchemaVersion": True,
                "generateResourceContainerTypes": True,
            },
        },
    }


def schema_json() -> str:
    """The schema as committed: stable key order, two-space indent, one trailing newline."""
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def resource(kind: AnyKind) -> dict[str, Any]:
    inputs = {name: f for name, f in documented(kind.inputs).items() if name in input_fields(kind)}
    state = {name: f for name, f in documented(kind.state).items() if name not in INTERNAL}

    def described(name: str, field: FieldInfo) -> dict[str, Any]:
        spec = prop(field)
        if not SAYS_CHANGE.search(spec["description"]) or name == kind.path:
            spec["description"] += " " + change_sentence(kind, name, field)
        return spec

    details = kind.details or None
    return {
        "description": kind.summary + (f"\n\n{details}" if details else ""),
        "inputProperties": {camel(n): described(n, f) for n, f in inputs.items()},
        "requiredInputs": sorted(camel(n) for n, f in inputs.items() if f.is_required()),
        "properties": {camel(n): described(n, f) for n, f in state.items()},
        # The local path is the one input an imported resource does not have.
        "required": sorted(
            camel(n)
            for n, f in state.items()
            if (always_set(f) and n != kind.path) or n in kind.state.guaranteed
        ),
    }


def function(spec: Function) -> dict[str, Any]:
    """A function (an invoke): its arguments, all optional here, and its result."""
    args = {n: f for n, f in documented(spec.args).items() if n not in INTERNAL}
    result = documented(spec.result)
    return {
        "description": spec.summary,
        "inputs": {"properties": {camel(n): prop(f) for n, f in args.items()}},
        "outputs": {
            "properties": {camel(n): prop(f) for n, f in result.items()},
            "required": sorted(camel(n) for n, f in result.items() if f.is_required()),
        },
    }


def change_sentence(kind: AnyKind, name: str, field: FieldInfo) -> str:
    """What changing a property does, in the words every property's description ends with."""
    if name == kind.path:
        return kind.path_change or CHANGES["update"]
    change = change_of(field)
    if change is None or name not in kind.inputs.model_fields:
        return OUTPUT_ONLY
    return CHANGES[change]


def documented(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """``model``'s fields, each described by the docstring written under it.

    Read here, when the schema is built, rather than by pydantic's ``use_attribute_docstrings``,
    which parses the source of every model each time the provider starts (about a sixth of the
    deploy layer's import)."""
    docs = attribute_docs(model)
    fields: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        if field.description is None and name in docs:
            field = copy.copy(field)
            field.description = docs[name]
        fields[name] = field
    return fields


@functools.cache
def attribute_docs(model: type) -> dict[str, str]:
    """The string under each annotated attribute of ``model`` and of its bases (a subclass's
    own wins), as Python's attribute-docstring convention writes it."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if cls is object or cls.__module__.startswith("pydantic"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):  # no source (a frozen build answers from its own schema)
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, after in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def input_fields(kind: AnyKind) -> dict[str, FieldInfo]:
    """What a program sets: every input but the internal ones and those ``check`` computes."""
    return {
        name: f
        for name, f in kind.inputs.model_fields.items()
        if name not in INTERNAL and change_of(f) != "computed"
    }


def always_set(field: FieldInfo) -> bool:
    """An output every state has: a required input, or one whose default is not null."""
    return field.is_required() or (
        not _optional(field.annotation) and field.get_default(call_default_factory=True) is not None
    )


def prop(field: FieldInfo) -> dict[str, Any]:
    spec = _type(_strip_optional(field.annotation))
    spec["description"] = _describe(field)
    if is_secret(field):
        spec["secret"] = True  # the SDKs and the engine keep it secret in state and outputs
    return spec


def _describe(field: FieldInfo) -> str:
    text = " ".join((field.description or "").split())
    # What a change does is said once, in the same words, by ``change_sentence``.
    text = re.sub(r"\s*\bReplaces\.", "", text)
    text = re.sub(r"``([^`]+)``", lambda m: f"`{_camel_words(m.group(1))}`", text)
    allowed = _choices(_strip_optional(field.annotation))
    if allowed and not all(f"`{v}`" in text for v in allowed):
        text += " One of " + ", ".join(f"`{v}`" for v in allowed) + "."
    if not field.is_required():
        default = field.get_default(call_default_factory=True)
        if default not in (None, [], {}):
            text += f" Default: `{json.dumps(default)}`."
    return text


def _camel_words(text: str) -> str:
    """Our field names quoted in a docstring, as the schema names them (the API's own field
    names stay as the API spells them)."""
    ours = {name for kind in KINDS.values() for name in kind.state.model_fields}
    return re.sub(
        r"\b[a-z]+(?:_[a-z0-9]+)+\b",
        lambda m: camel(m.group(0)) if m.group(0) in ours else m.group(0),
        text,
    )


def _type(annotation: Any) -> dict[str, Any]:
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str or get_origin(annotation) is Literal:
        return {"type": "string"}
    if get_origin(annotation) is list:
        return {"type": "array", "items": _type(get_args(annotation)[0])}
    if get_origin(annotation) is dict:
        return {"type": "object", "additionalProperties": {"$ref": "pulumi.json#/Any"}}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"$ref": f"#/types/{type_token(annotation)}"}
    raise TypeError(f"no schema type for {annotation!r}: add it to native.schema._type")


def _choices(annotation: Any) -> Iterable[Any]:
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def _bare(annotation: Any) -> Any:
    """The type under ``Annotated`` constraints."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _optional(annotation: Any) -> bool:
    annotation = _bare(annotation)
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _strip_optional(annotation: Any) -> Any:
    annotation = _bare(annotation)
    if not _optional(annotation):
        return annotation
    rest = [_bare(a) for a in get_args(annotation) if a is not type(None)]
    return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
