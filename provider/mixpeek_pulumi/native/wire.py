"""Properties between the provider protocol and the typed models: protobuf ``Struct``s with
camelCase keys on the wire, plain dicts with the models' snake_case names inside."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from google.protobuf import json_format, struct_pb2
from pydantic import BaseModel

from ..errors import register_secret, texts
from ..kinds.base import AnyKind
from .schema import INTERNAL, _strip_optional, camel, snake

UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's stand-in for a value a preview does not know yet."""
SIG: Final = "4dabf18193072939515e22adb298388d"
SECRET_SIG: Final = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a marker, not a secret
"""How the engine marks a secret value, ``{SIG: SECRET_SIG, "value": ...}``, where it sends one
before the provider said it does not accept them (``Configure``'s own arguments)."""


def load(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct) if struct is not None else {}


def reveal(value: Any) -> Any:
    """A secret-wrapped value's plain value; any other value as it is."""
    if is_secret(value):
        return value.get("value")
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


Path = tuple[str, ...]


def unwrap(props: Mapping[str, Any]) -> tuple[dict[str, Any], set[Path]]:
    """``props`` with every secret unwrapped, the plain values registered for redaction, and
    where each secret was (the provider accepts secrets so it knows what to hide, and hands
    them back wrapped where they came from)."""
    found: set[Path] = set()

    def plain(value: Any, path: Path) -> Any:
        if is_secret(value):
            found.add(path)
            inner = value.get("value")
            for text in texts(inner):
                register_secret(text)
            return plain(inner, path)
        if isinstance(value, dict):
            return {k: plain(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v, path) for v in value]
        return value

    return {k: plain(v, (k,)) for k, v in props.items()}, found


def wrap(values: Mapping[str, Any], secrets: Iterable[Path]) -> dict[str, Any]:
    """``values`` with the value at each secret path wrapped as a secret again (an object
    that is only partly secret keeps its other fields readable, as the engine does)."""
    result = dict(values)
    for path in sorted(secrets, key=len):
        _wrap_at(result, path)
    return result


def _wrap_at(values: dict[str, Any], path: Path) -> None:
    head, rest = path[0], path[1:]
    if head not in values or values[head] is None or is_secret(values[head]):
        return
    if rest and isinstance(values[head], dict):
        values[head] = dict(values[head])
        _wrap_at(values[head], rest)
    else:
        values[head] = {SIG: SECRET_SIG, "value": values[head]}


def dump(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(props))
    return struct


class Codec:
    """One resource kind's names: the wire's camelCase and the models' snake_case."""

    def __init__(self, kind: AnyKind) -> None:
        fields = set(kind.state.model_fields) | set(kind.inputs.model_fields)
        self.to_model = {camel(name): name for name in fields if name not in INTERNAL}
        self.to_wire = {name: wire for wire, name in self.to_model.items()}
        # Inputs that are objects of their own (``verify``): their keys are renamed too.
        self.nested = {
            name
            for name, field in kind.inputs.model_fields.items()
            if isinstance(_strip_optional(field.annotation), type)
            and issubclass(_strip_optional(field.annotation), BaseModel)
        }
        # The names messages may mention in backticks: the kind's fields and their fields.
        self.known = fields | {
            inner
            for name in self.nested
            for inner in _strip_optional(kind.inputs.model_fields[name].annotation).model_fields
        }

    def model(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Wire properties under the models' names; an unknown key keeps a snake_case form of
        itself so the model's check can name it as a typo."""
        named = {self.to_model.get(k, snake(k)): v for k, v in props.items()}
        return {k: _renamed(v, snake) if k in self.nested else v for k, v in named.items()}

    def wire(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            self.name(k): _renamed(v, camel) if k in self.nested else v
            for k, v in values.items()
            if k not in INTERNAL
        }

    def name(self, field: str) -> str:
        """A model field (or a check failure's field path, nested ones too) as the program
        spells it."""
        head, *rest = field.split(".")
        return ".".join([self.to_wire.get(head, camel(head)), *(camel(p) for p in rest)])

    def words(self, text: str) -> str:
        """``text`` with every input it names in backticks (```verify.timeout_seconds```)
        spelled as the program spells it (```verify.timeoutSeconds```); any other backticked
        word (a build's own message, a file name) stays as it is."""

        def spelled(found: re.Match[str]) -> str:
            named = found.group(1)
            return f"`{self.name(named)}`" if named.split(".")[0] in self.known else found[0]

        return _NAMED.sub(spelled, text)

    def names(self, fields: Iterable[str]) -> list[str]:
        return [self.name(f) for f in fields]


def _renamed(value: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {rename(k): v for k, v in value.items()}
    return value


_NAMED: Final = re.compile(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:_[a-z0-9]+)*)*)`")


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == UNKNOWN
