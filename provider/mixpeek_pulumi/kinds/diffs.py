"""What a change of inputs is: each declared input compared (a nested object with its
defaults filled in), what changing it does, and each validation problem in plain words naming
the field as ``check`` reports it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError

from .spec import Inputs, change_of


@dataclass(frozen=True)
class Diff:
    """What changed between the state and the new inputs: each changed property with what its
    change does (``update`` or ``replace``, as the README's tables say), and lines a preview
    shows under the resource (which files of a bundle changed)."""

    replaces: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    """Changed properties that are outputs, not inputs (``live`` after drift)."""
    notes: tuple[str, ...] = ()
    """What a preview says under the resource, one line each."""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def kinds(self) -> dict[str, str]:
        """Each changed property and what changing it does: ``update`` or ``replace``."""
        return {k: "replace" if k in self.replaces else "update" for k in self.changes}

    def with_notes(self, notes: Iterable[str]) -> Diff:
        return Diff(self.replaces, self.changes, self.outputs, (*self.notes, *notes))


def diff_inputs(
    model: type[Inputs],
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    unknown: Iterable[str] = (),
    *,
    skip: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> Diff:
    """Compare every declared input, defaults filled in; a still-unknown input counts as
    changed. ``skip`` leaves fields to the caller (a path whose content is compared by
    digest); ``extra`` adds changes the caller found (content, drift)."""
    unknown, skipped = set(unknown), set(skip)
    old, new = _normalized(model, olds), _normalized(model, news)
    changes: list[str] = []
    replaces: list[str] = []
    for name, info in model.model_fields.items():
        kind = change_of(info)
        if name in skipped or kind == "computed":
            continue
        if name in unknown or old.get(name) != new.get(name):
            changes.append(name)
            if kind == "replace":
                replaces.append(name)
    changes.extend(x for x in extra if x not in changes)
    outputs = tuple(x for x in changes if x not in model.model_fields)
    recorded = [
        x for x in changes if x in model.model_fields and change_of(model.model_fields[x]) == "none"
    ]
    notes: tuple[str, ...] = ()
    if recorded and len(recorded) == len(changes):
        notes = (f"{', '.join(recorded)}: recorded in the state only; nothing is deployed",)
    return Diff(tuple(replaces), tuple(changes), outputs, notes)


def _normalized(model: type[Inputs], props: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if props.get(name) is not None:
            result[name] = _filled(info, props[name])
        elif not info.is_required():
            result[name] = info.get_default(call_default_factory=True)
    return result


def _filled(info: Any, value: Any) -> Any:
    """A nested object (``verify``, a required one too) with its defaults filled in, so a program that leaves a
    default out and a state that recorded it compare equal."""
    candidates = (info.annotation, *get_args(info.annotation))
    nested = next(
        (a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)),
        None,
    )
    if nested is None or not isinstance(value, Mapping):
        return value
    try:
        return nested.model_validate(dict(value)).model_dump()
    except ValidationError:
        return value


@dataclass(frozen=True)
class Failure:
    """A problem ``check`` found with one input, before anything is sent."""

    field: str
    reason: str


def validate_inputs(
    model: type[Inputs], props: Mapping[str, Any], unknown: Iterable[str] = ()
) -> tuple[Any, list[Failure]]:
    """The known inputs validated; problems with inputs that are still unknown (a preview) are
    left for later. Returns the model (None if invalid) and the failures."""
    unknown = set(unknown)
    known = {
        k: v
        for k, v in props.items()
        if k in model.model_fields and v is not None and k not in unknown
    }
    try:
        return model.model_validate(known), []
    except ValidationError as exc:
        failures = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            if loc and loc[0] in unknown:
                continue
            where = ".".join(str(p) for p in loc) or "inputs"
            failures.append(Failure(where, plain_reason(err)))
        return None, failures


_BOUNDS: Final = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "string_too_long": ("max_length", "must be at most {} characters long"),
}
_KINDS: Final = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "dict": "an object",
    "model": "an object",
    "list": "a list",
}


def plain_reason(err: Mapping[str, Any]) -> str:
    """What a validation error says, in plain words: what the value must be, and what it was
    when that helps (inputs name fields as `snake_case` in backticks, which each front door
    shows as its programs spell them)."""
    kind, ctx = str(err.get("type", "")), err.get("ctx") or {}
    loc = [str(p) for p in err.get("loc") or ()]
    if kind == "missing":
        text = "is required"
    elif kind == "extra_forbidden":
        parent = ".".join(loc[:-1])
        text = f"is not a field of `{parent}`" if parent else "is not an input"
    elif kind in _BOUNDS:
        key, phrase = _BOUNDS[kind]
        bound = ctx.get(key)
        text = phrase.format(f"{bound:g}" if isinstance(bound, float) else bound)
    elif kind == "string_too_short":
        text = "must not be empty" if ctx.get("min_length") == 1 else str(err.get("msg"))
    elif kind == "literal_error":
        text = f"must be one of {ctx.get('expected')}, not {_shown(err.get('input'))}"
    elif kind.split("_")[0] in _KINDS and kind.endswith(("_type", "_parsing", "_from_float")):
        text = f"must be {_KINDS[kind.split('_')[0]]}, not {_shown(err.get('input'))}"
        if kind == "int_from_float":
            text = f"must be a whole number, not {_shown(err.get('input'))}"
    else:
        text = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
    return text if text.endswith(".") else text + "."


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)[:40]


def split_unknowns(
    props: Mapping[str, Any], is_unknown: Callable[[Any], bool]
) -> tuple[dict[str, Any], set[str]]:
    """The known inputs, and the names of those a preview does not know yet (a value, or an
    item of a list, that ``is_unknown``: each front door has its own stand-in for them)."""

    def unknown(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(unknown(v) for v in value)
        return is_unknown(value)

    names = {k for k, v in props.items() if unknown(v)}
    return {k: v for k, v in props.items() if k not in names}, names
