"""What every Mixpeek dynamic provider shares: config, sessions, preview unknowns, errors.

Providers are pickled into state by reference and keep nothing on ``self`` that could be
pickled: the API key is read in ``configure()``, which runs in the provider process.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, ParamSpec, TypeVar

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
from ..deadline import Cancellation
from ..errors import InputError, redact, register_secret, texts
from ..kinds.base import Door, Kind, failure
from ..kinds.base import checked as check_inputs
from ..kinds.common import Diff, Failure, split_unknowns, validate_inputs
from ..kinds.registry import KINDS
from ..kinds.spec import State
from ..run.journal import Journal
from ..run.progress import write_line

P = ParamSpec("P")
R = TypeVar("R")
# A refresh reads a few things; it never waits for a build.
# How many create/update/read/delete calls the provider host serves at once (the SDK's own
# host serves 4, and each create holds its call until the deploy is done).
HOST_WORKERS: Final = 64
HOST_VERBS: Final = ("Create", "Update", "Read", "Delete")


def widen_provider_host() -> bool:
    """In the SDK's dynamic-provider host (``python -m pulumi.dynamic``), serve the long calls
    on a pool of ``HOST_WORKERS`` threads instead of the host's 4, so that deploys wait on the
    service side by side; the engine's ``--parallel`` is then the only bound.

    It uses gRPC's per-method ``experimental_thread_pool`` on the host's servicer methods. When
    the host or gRPC is not shaped as expected, it changes nothing and says so in one line."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is None or spec.name != "pulumi.dynamic.__main__":
        return False  # the program's own process, or a test harness: nothing to widen
    servicer = getattr(main, "DynamicResourceProviderServicer", None)
    if not honour_cancel(main, servicer):
        print(  # noqa: T201 - the CLI shows the host's stderr under the stack
            "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so "
            "Ctrl-C does not reach its deploys: each runs on until its timeout_seconds",
            file=sys.stderr,
            flush=True,
        )
    verbs = [getattr(servicer, verb, None) for verb in HOST_VERBS]
    try:
        from grpc import _server
    except ImportError:
        _server = None
    if (
        servicer is None
        or not all(callable(v) for v in verbs)
        or not hasattr(_server, "_select_thread_pool_for_behavior")
    ):
        print(  # noqa: T201 - the CLI shows the host's stderr under the stack
            "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so it "
            "keeps serving 4 deploys at a time",
            file=sys.stderr,
            flush=True,
        )
        return False
    detail_host_diffs(main)
    if getattr(verbs[0], "experimental_thread_pool", None) is None:
        pool = ThreadPoolExecutor(HOST_WORKERS, thread_name_prefix="mixpeek-host")
        for verb in verbs:
            verb.experimental_thread_pool = pool  # type: ignore[union-attr]
    return True


HOST_CANCEL: Final = Cancellation()
"""The engine's Cancel (Ctrl-C) in this provider host: every operation's deadline ends on it."""


def honour_cancel(main: Any, servicer: Any) -> bool:
    """Let the SDK's host pass the engine's Cancel on: its own ``Cancel`` does nothing, so a
    Ctrl-C would leave every wait running until its own timeout. The host registered that
    method with gRPC when it started, so the method's code is replaced in place (it runs
    with the host module's globals, where the hook is put)."""
    method: Any = getattr(servicer, "Cancel", None)
    code = getattr(method, "__code__", None)
    if code is None or code.co_argcount != _cancel.__code__.co_argcount:
        return False
    if not hasattr(main, "empty_pb2"):
        return False  # the answer the replaced code builds
    if code is not _cancel.__code__:
        main._mixpeek_host_cancel = HOST_CANCEL.set
        method.__code__ = _cancel.__code__
    return True


def _cancel(self: Any, request: Any, context: Any) -> Any:  # runs as the host's Cancel
    _mixpeek_host_cancel()  # type: ignore[name-defined]  # noqa: F821 - the host's global
    return empty_pb2.Empty()  # type: ignore[name-defined]  # noqa: F821 - the host's global


def check_failures(failures: Sequence[Failure]) -> list[CheckFailure]:
    return [CheckFailure(f.field, f.reason) for f in failures]


_DETAIL = threading.local()
"""The last diff's detail, per thread: the host builds its answer right after ``diff``."""


def diff_result(diff: Diff) -> DiffResult:
    _DETAIL.diff = diff
    return DiffResult(
        changes=diff.changed, replaces=list(diff.replaces), delete_before_replace=False
    )


class _DetailedDiffResponse:
    """The host's ``DiffResponse`` with the changed properties added (``diffs``,
    ``detailedDiff``): the SDK's host sends only ``changes`` and ``replaces`` (3.139 to
    3.272), so the CLI would name the inputs whose values differ instead (a digest)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # DIFF_SOME and the like

    def __call__(self, **fields: Any) -> Any:
        diff: Diff | None = getattr(_DETAIL, "diff", None)
        _DETAIL.diff = None
        if diff is not None and "diffs" not in fields:
            fields = {**fields, **detailed_fields(diff)}
        return self._real(**fields)


def detailed_fields(diff: Diff) -> dict[str, Any]:
    from pulumi.runtime.proto import provider_pb2

    kinds = {"update": provider_pb2.PropertyDiff.UPDATE}
    kinds["replace"] = provider_pb2.PropertyDiff.UPDATE_REPLACE
    return {
        "diffs": list(diff.changes),
        "detailedDiff": {
            key: provider_pb2.PropertyDiff(kind=kinds[kind], inputDiff=key not in diff.outputs)
            for key, kind in diff.kinds().items()
        },
        "hasDetailedDiff": True,
    }


class _HostProto:
    """The host's ``proto`` module, with ``DiffResponse`` detailed."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.DiffResponse = _DetailedDiffResponse(real.DiffResponse)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def detail_host_diffs(main: Any) -> bool:
    """Let the SDK's host send each diff's changed properties, where it is shaped as expected
    (its ``Diff`` builds ``proto.DiffResponse`` from the module's ``proto``); else nothing
    changes and the CLI names the inputs that differ."""
    real = getattr(main, "proto", None)
    if isinstance(real, _HostProto):
        return True
    if real is None or not callable(getattr(real, "DiffResponse", None)):
        return False
    main.proto = _HostProto(real)
    return True


def echo(kind: str, name: str) -> Callable[[str], None]:
    """A sink that shows a line the way the CLI shows provider output (stderr, unbuffered)."""

    def write(line: str) -> None:
        write_line(f"{kind} {name}: {redact(line)}")

    return write


@contextmanager
def reported(kind: str, name: str) -> Iterator[None]:
    """Whatever a step raises reaches the user as ``deploy.lifecycle.failure`` words it.

    The engine shows the provider's traceback; raising from here keeps it to the frames of the
    SDK's host and this one, with the sentence on its last line."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a bug, too, reaches the user as one sentence
        raise failure(exc, kind, name).with_traceback(None) from None


class DynamicProvider(ResourceProvider):
    """The base of the dynamic resources' providers; pickles to its class and nothing else.
    Each verb hands the engine's properties to its kind's lifecycle (``deploy.kinds``) and
    returns the typed state as outputs."""

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
    def steps(self) -> Kind:
        return KINDS[self.kind]

    def door(self, name: str) -> Door:
        return Door(
            self.config(),
            echo(self.kind, name),
            name,
            cancel=HOST_CANCEL,
            journal=Journal.default(),
        )

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
        with reported(self.kind, name):
            diff = self.steps.diff(olds, known, unknown)
        say = echo(self.kind, name)
        for note in diff.notes:
            say(note)
        return diff_result(diff)

    def create(self, props: dict[str, Any]) -> CreateResult:
        reveal_secrets(props)
        name = _name(props)
        with reported(self.kind, name):
            state = self.steps.create(self.door(name), props)
        return CreateResult(state.resource_id, state.to_outputs())

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        reveal_secrets(olds)
        reveal_secrets(news)
        name = _name(news, _id)
        with reported(self.kind, name):
            state = self.steps.update(self.door(name), olds, news)
        return UpdateResult(state.to_outputs())

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        reveal_secrets(props)
        name = _name(props, id_)
        with reported(self.kind, name):
            now = self.steps.read(self.door(name), props)
        return ReadResult(None, {}) if now is None else ReadResult(id_, now.to_outputs())

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        reveal_secrets(props)
        name = _name(props, id_)
        with reported(self.kind, name):
            self.steps.delete(self.door(name), props)


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
    """A nested Args dataclass as the dict the engine carries, its unset fields left out
    (shallow: ``asdict`` would deep-copy Outputs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    return value


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
