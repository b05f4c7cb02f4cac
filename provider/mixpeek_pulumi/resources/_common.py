"""What every Mixpeek dynamic provider shares: config, input validation, diffing, echoing.

Providers are pickled into state by reference and keep nothing on ``self`` that could be
pickled: the API key is read in ``configure()``, which runs in the provider process.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, ParamSpec, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pydantic import BaseModel, ConfigDict, ValidationError

from ..client import MixpeekClient
from ..config import ProviderConfig
from ..errors import DeployError, MixpeekError, ResourceError, redact

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")
RESERVED: Final = frozenset({"__provider"})


class Inputs(BaseModel):
    """Resource inputs: unknown keys are typos and fail ``check``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource_name: str = ""
    base_url: str | None = None


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def user_inputs(props: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The props that are inputs of ``model`` (outputs and ``__provider`` left out)."""
    return {k: v for k, v in props.items() if k in model.model_fields and v is not None}


def validate(model: type[M], props: Mapping[str, Any]) -> tuple[M | None, list[CheckFailure]]:
    """Validate known inputs; problems on fields that are still unknown (preview) are skipped."""
    values = user_inputs(props, model)
    unknown = {k for k, v in values.items() if is_unknown(v)}
    known = {k: v for k, v in values.items() if k not in unknown}
    try:
        return model.model_validate(known), []
    except ValidationError as exc:
        failures = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            if loc and loc[0] in unknown:
                continue
            where = ".".join(str(p) for p in loc) or "inputs"
            failures.append(CheckFailure(where, err["msg"]))
        return None, failures


def normalized(model: type[BaseModel], props: Mapping[str, Any]) -> dict[str, Any]:
    """Every input of ``model`` with its default filled in, unknowns kept as they are."""
    result = {}
    for name, info in model.model_fields.items():
        if props.get(name) is not None:
            result[name] = props[name]
        elif not info.is_required():
            result[name] = info.get_default(call_default_factory=True)
        else:
            result[name] = None
    return result


def changed_keys(
    model: type[BaseModel], olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str]
) -> list[str]:
    old, new = normalized(model, olds), normalized(model, news)
    return [k for k in keys if is_unknown(new.get(k)) or old.get(k) != new.get(k)]


def as_int(value: Any) -> int | None:
    """A whole number from state: the wire carries every number as a double."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def echo(kind: str, name: str) -> Callable[[str], None]:
    """A sink that shows a line the way the CLI shows provider output (stderr, unbuffered)."""

    def write(line: str) -> None:
        print(f"{kind} {name}: {redact(line)}", file=sys.stderr, flush=True)  # noqa: T201

    return write


def named_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Head every failure of a provider verb with the resource's kind and name.

    The engine shows the traceback's last line; this makes it say which resource failed.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DeployError:
            raise
        except (MixpeekError, OSError) as exc:
            provider = args[0]
            props = next((a for a in reversed(args) if isinstance(a, dict)), {})
            name = str(props.get("resource_name") or (args[1] if len(args) > 1 else ""))
            kind = getattr(provider, "kind", "Mixpeek")
            raise ResourceError(kind, name, exc) from exc

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

    def client(self, base_url: str | None, name: str) -> MixpeekClient:
        cfg = self.config().with_base_url(base_url)
        return MixpeekClient.from_config(cfg, log=echo(self.kind, name))


def resource_props(
    args: Any, outputs: Iterable[str], resource_name: str, *, paths: Iterable[str] = ()
) -> dict[str, Any]:
    """The registration payload: every output declared as None, the set args (shallow: ``asdict``
    would deep-copy Outputs), paths made absolute where the user wrote them, and the name."""
    props: dict[str, Any] = dict.fromkeys(outputs)
    props.update(
        {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(args)
            if getattr(args, f.name) is not None
        }
    )
    for key in paths:
        props[key] = absolute(props[key])
    props["resource_name"] = resource_name
    return props


def absolute(path: pulumi.Input[str]) -> pulumi.Input[str]:
    """Paths are resolved in the program's folder, where the user wrote them."""
    if isinstance(path, str):
        return os.path.abspath(path)
    return pulumi.Output.from_input(path).apply(os.path.abspath)  # type: ignore[arg-type]
