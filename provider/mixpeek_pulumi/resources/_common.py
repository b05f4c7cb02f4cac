"""The dynamic front door: every Mixpeek dynamic provider's verbs, from the engine's properties
to its kind's verbs and back, and the registration payload a resource sends.

Providers are pickled into state by reference and keep nothing on ``self`` that could be
pickled: the API key is read in ``configure()``, which runs in the provider process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

from ..config import ProviderConfig
from ..errors import InputError, redact, register_secret, texts
from ..kinds.base import AnyKind, check_inputs
from ..kinds.diffs import Failure, split_unknowns, validate_inputs
from ..kinds.registry import KINDS
from ..kinds.spec import State
from ..kinds.spec import secret_paths as spec_secret_paths
from ..run.context import READ_SECONDS, Context, failure
from ..run.journal import Journal
from ..run.progress import write_line
from .host import HOST_CANCEL, diff_result, widen_provider_host


def check_failures(failures: Sequence[Failure]) -> list[CheckFailure]:
    return [CheckFailure(f.field, f.reason) for f in failures]


def echo(kind: str, name: str) -> Callable[[str], None]:
    """A sink that shows a line the way the CLI shows provider output (stderr, unbuffered)."""

    def write(line: str) -> None:
        write_line(f"{kind} {name}: {redact(line)}")

    return write


@contextmanager
def reported(kind: str, name: str) -> Iterator[None]:
    """Whatever a step raises reaches the user as ``run.context.failure`` words it.

    The engine shows the provider's traceback; raising from here keeps it to the frames of the
    SDK's host and this one, with the sentence on its last line."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a bug, too, reaches the user as one sentence
        raise failure(exc, kind, name).with_traceback(None) from None


class DynamicProvider(ResourceProvider):
    """The base of the dynamic resources' providers; pickles to its class and nothing else.
    Each verb parses the engine's properties into its kind's models, opens the call's
    ``Context`` and calls the kind's verb of the same name; the typed state goes back as
    outputs."""

    kind: ClassVar[str] = "Mixpeek"
    # Nothing secret is captured (see __getstate__), so the pickle need not be encrypted.
    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pass

    def configure(self, req: ConfigureRequest) -> None:
        # The one call every host makes first: the place to widen the host it runs in.
        widen_provider_host()
        self._config = ProviderConfig.resolve(req.config.get)

    def config(self) -> ProviderConfig:
        config: ProviderConfig | None = getattr(self, "_config", None)
        if config is None:
            config = ProviderConfig.resolve(None)
            self._config = config
        return config

    @property
    def steps(self) -> AnyKind:
        return KINDS[self.kind]

    @contextmanager
    def context(
        self, name: str, subject: object, seconds: float | None = None
    ) -> Iterator[Context]:
        """One call's context: its lines shown (redacted) under the resource, Ctrl-C ending
        its deadline, and the journal on this machine."""
        with Context.open(
            self.kind,
            name,
            config=self.config(),
            say=echo(self.kind, name),
            subject=subject,
            seconds=seconds,
            cancel=HOST_CANCEL,
            journal=Journal.default(),
        ) as ctx:
            yield ctx

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        reveal_secrets(news)
        known, unknown = split_unknowns(news, lambda v: isinstance(v, Unknown))
        with reported(self.kind, _name(news)):
            computed, failures = check_inputs(
                self.config(), self.steps, olds, known, unknown, cancel=HOST_CANCEL
            )
        checked = {k: v for k, v in news.items() if k not in computed} | computed
        for key in self.steps.state.output_keys():
            if key in self.steps.inputs.model_fields and key not in computed:
                checked.pop(key, None)  # a value only check may compute
        return CheckResult(checked, check_failures(failures))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        reveal_secrets(olds)
        reveal_secrets(news)
        known, unknown = split_unknowns(news, lambda v: isinstance(v, Unknown))
        name = _name(news, _id)
        kind = self.steps
        with reported(self.kind, name):
            diff = kind.diff(kind.state.load(olds), known, unknown)
        say = echo(self.kind, name)
        for note in diff.notes:
            say(note)
        return diff_result(diff)

    def create(self, props: dict[str, Any]) -> CreateResult:
        reveal_secrets(props)
        name, kind = _name(props), self.steps
        with reported(self.kind, name):
            inputs = kind.inputs.parse(props)
            with self.context(name, inputs) as ctx:
                state = kind.create(ctx, inputs)
        return CreateResult(state.resource_id, state.to_outputs())

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        reveal_secrets(olds)
        reveal_secrets(news)
        name, kind = _name(news, _id), self.steps
        with reported(self.kind, name):
            old, inputs = kind.state.load(olds), kind.inputs.parse(news)
            with self.context(name, inputs) as ctx:
                state = kind.update(ctx, old, inputs)
        return UpdateResult(state.to_outputs())

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        reveal_secrets(props)
        name, kind = _name(props, id_), self.steps
        with reported(self.kind, name):
            state = kind.state.load(props)
            with self.context(name, state, READ_SECONDS) as ctx:
                now = kind.read(ctx, state)
        return ReadResult(None, {}) if now is None else ReadResult(id_, now.to_outputs())

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        reveal_secrets(props)
        name, kind = _name(props, id_), self.steps
        with reported(self.kind, name):
            state = kind.state.load(props)
            with self.context(name, state) as ctx:
                kind.delete(ctx, state)


MixpeekProvider = DynamicProvider
"""The name this base had before 0.2; kept for anything that imported it."""


def _name(props: dict[str, Any], fallback: str = "") -> str:
    return str(props.get("resource_name") or fallback)


@dataclass(frozen=True, kw_only=True)
class VerifyArgs:
    """A check of the live site after a switch (``spec.Verify`` documents each field); a plain
    dict with these snake_case keys works the same."""

    path: pulumi.Input[str] | None = None
    expect_status: pulumi.Input[int] | None = None
    expect_text: pulumi.Input[str] | None = None
    checks: pulumi.Input[int] | None = None
    interval_seconds: pulumi.Input[float] | None = None
    timeout_seconds: pulumi.Input[float] | None = None
    url: pulumi.Input[str] | None = None


def _plain_args(value: Any) -> Any:
    """A nested Args dataclass as the dict the engine carries, its unset fields left out,
    and so on inside it, through dicts and lists (never ``asdict``, which would deep-copy
    Outputs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain_args(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, dict):
        return {k: _plain_args(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_args(v) for v in value]
    return value


def kept_secret(given: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``given`` with the value at each of the kind's secret paths (``auth_config.password``)
    a secret Output, so the engine keeps it secret in the state and its outputs whether or not
    the program marked it. Where the path runs into an Output (a whole setting computed by
    the program), that Output is made secret: more is hidden, nothing is shown."""
    result = dict(given)
    for path in paths:
        _secret_at(result, path.split("."))
    return result


def _secret_at(values: dict[str, Any], path: list[str]) -> None:
    head, rest = path[0], path[1:]
    value = values.get(head)
    if value is None:
        return
    if rest and isinstance(value, dict):
        inner = dict(value)
        _secret_at(inner, rest)
        values[head] = inner
    else:
        values[head] = pulumi.Output.secret(value)


def resource_props(
    kind: str,
    state: type[State],
    args: Any,
    resource_name: str,
    *,
    paths: Iterable[str] = (),
) -> dict[str, Any]:
    """The registration payload: every output declared as None, the set args (shallow: ``asdict``
    would deep-copy Outputs), paths made absolute where the user wrote them, and the name.

    Raises ``InputError`` for a plain value the inputs model refuses (an infinite timeout, a
    boolean version), in the program, before it reaches the engine.
    """
    given = {
        f.name: _plain_args(getattr(args, f.name))
        for f in dataclasses.fields(args)
        if getattr(args, f.name) is not None
    }
    plain = {k: v for k, v in given.items() if not _eventual(v)}
    model = state.inputs_model
    _, failures = validate_inputs(model, plain, set(model.model_fields) - set(plain))
    if failures:
        raise InputError(kind, resource_name, [(f.field, f.reason) for f in failures])
    given = kept_secret(given, spec_secret_paths(model))
    props: dict[str, Any] = dict.fromkeys(state.output_keys())
    props.update(given)
    for key in paths:
        props[key] = absolute(props[key])
    props["resource_name"] = resource_name
    secret = secret_paths(given)
    if secret is not None:
        props[SECRET_INPUTS] = secret
    return props


SECRET_INPUTS: Final = "secret_inputs"  # noqa: S105 - a property name, not a secret
"""Where the program tells the provider which inputs it marked secret: the engine hands a
dynamic provider every value in the clear, so this is how it knows what to keep out of every
line and error (the state keeps them secret by itself)."""


def secret_paths(given: dict[str, Any]) -> pulumi.Output[list[str]] | None:
    """The dotted paths of the inputs that are secret Outputs, as a plain (not secret)
    Output; None when no input is an Output, so nothing is added."""
    found: list[tuple[str, pulumi.Output[Any]]] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, pulumi.Output):
            found.append((path, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}.{key}")

    for key, value in given.items():
        visit(value, key)
    if not found:
        return None

    async def which() -> list[str]:
        return [path for path, output in found if await output.is_secret()]

    return pulumi.Output.from_input(which())


def reveal_secrets(props: dict[str, Any]) -> None:
    """Keep the values at the paths the program marked secret out of every message."""
    paths = props.get(SECRET_INPUTS)
    for path in paths if isinstance(paths, list) else []:
        value: Any = props
        for part in str(path).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        for text in texts(value):  # a secret object: every string inside it
            register_secret(text)


def _eventual(value: Any) -> bool:
    """An Output or awaitable, or a container holding one: known only once the engine runs."""
    if isinstance(value, pulumi.Output | Awaitable):
        return True
    if isinstance(value, list | tuple):
        return any(_eventual(v) for v in value)
    if isinstance(value, dict):
        return any(_eventual(v) for v in value.values())
    return False


def absolute(path: pulumi.Input[str]) -> pulumi.Input[str]:
    """Paths are resolved in the program's folder, where the user wrote them."""
    if isinstance(path, str):
        return os.path.abspath(path)
    return pulumi.Output.from_input(path).apply(os.path.abspath)  # type: ignore[arg-type]
