"""What every Mixpeek dynamic provider shares: config, sessions, preview unknowns, errors.

Providers are pickled into state by reference and keep nothing on ``self`` that could be
pickled: the API key is read in ``configure()``, which runs in the provider process.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Final, ParamSpec, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, ConfigureRequest, DiffResult, ResourceProvider
from pulumi.output import Unknown

from ..client import MixpeekClient
from ..config import ProviderConfig
from ..deadline import Deadline
from ..deploy.common import Diff, Failure, Operation, validate_inputs
from ..errors import DeployError, InputError, MixpeekError, ResourceError, redact
from ..spec import Inputs, State

P = ParamSpec("P")
R = TypeVar("R")
# A refresh reads a few things; it never waits for a build.
READ_TIMEOUT: Final = 300.0


def split_unknowns(props: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The known inputs, and the names of those a preview does not know yet."""
    unknown = {k for k, v in props.items() if _has_unknown(v)}
    return {k: v for k, v in props.items() if k not in unknown}, unknown


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, list | tuple):
        return any(_has_unknown(v) for v in value)
    return False


def check_failures(failures: Sequence[Failure]) -> list[CheckFailure]:
    return [CheckFailure(f.field, f.reason) for f in failures]


def diff_result(diff: Diff) -> DiffResult:
    return DiffResult(
        changes=diff.changed, replaces=list(diff.replaces), delete_before_replace=False
    )


def echo(kind: str, name: str) -> Callable[[str], None]:
    """A sink that shows a line the way the CLI shows provider output (stderr, unbuffered)."""

    def write(line: str) -> None:
        print(f"{kind} {name}: {redact(line)}", file=sys.stderr, flush=True)  # noqa: T201

    return write


def named_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Head every failure of a provider verb with the resource's kind and name.

    The engine shows the provider's traceback; raising from here keeps it to the frames of the
    SDK's host and this one, with the sentence on its last line.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DeployError as exc:
            raise exc.with_traceback(None) from None
        except (MixpeekError, OSError) as exc:
            provider = args[0]
            props = next((a for a in reversed(args) if isinstance(a, dict)), {})
            name = str(props.get("resource_name") or (args[1] if len(args) > 1 else ""))
            kind = getattr(provider, "kind", "Mixpeek")
            raise ResourceError(kind, name, exc) from None

    return wrapper


class MixpeekProvider(ResourceProvider):
    """The base of the Mixpeek providers; pickles to its class and nothing else."""

    kind: ClassVar[str] = "Mixpeek"
    # Nothing secret is captured (see __getstate__), so the pickle need not be encrypted.
    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pass

    def configure(self, req: ConfigureRequest) -> None:
        self._config = ProviderConfig.resolve(req.config.get)

    def config(self) -> ProviderConfig:
        config: ProviderConfig | None = getattr(self, "_config", None)
        if config is None:
            config = ProviderConfig.resolve(None)
            self._config = config
        return config

    @contextmanager
    def session(
        self, subject: Inputs, *, timeout: float | None = None, name: str = ""
    ) -> Iterator[tuple[MixpeekClient, Operation]]:
        """A client and the operation's context for ``subject`` (inputs or state), both bound
        to one deadline: ``timeout``, else the resource's ``timeout_seconds``."""
        declared: float = getattr(subject, "timeout_seconds", READ_TIMEOUT)
        seconds = timeout if timeout is not None else declared
        who = subject.resource_name or name
        op = Operation(self.kind, who, echo(self.kind, who), Deadline.after(seconds))
        cfg = self.config().with_base_url(subject.base_url)
        with MixpeekClient.from_config(cfg, log=op.say, deadline=op.deadline) as api:
            yield api, op


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
        f.name: getattr(args, f.name)
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
    return props


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
