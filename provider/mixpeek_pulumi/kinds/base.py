"""The one typed lifecycle every resource kind implements, and the seam both front doors call.

A kind is a ``Lifecycle[InputsT, StateT]``: the same verbs (check, diff, create, update, read,
delete, import) over its own typed inputs and state, so the type checker refuses plugin inputs
handed to the app deployer. ``Registered`` wraps one for the front doors, which only have the
engine's properties: it parses them into the kind's models, opens the step's ``Session`` from
what the front door supplies (a ``Door``), and calls the typed verb. ``failure`` is the one
mapping from whatever a step raised to the error the user reads, for both front doors.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from ..api import credentials
from ..api.client import MixpeekClient
from ..config import ProviderConfig
from ..deadline import Deadline
from ..errors import DeployError, MixpeekError, ResourceError, redact
from ..run.journal import Journal
from .common import Diff, Failure, LogSink, Operation, validate_inputs
from .spec import Inputs, State

InputsT = TypeVar("InputsT", bound=Inputs)
StateT = TypeVar("StateT", bound=State)
Checked = tuple[dict[str, Any], list[Failure]]
Probe = credentials.Probe

REFRESH_SECONDS: Final = 300.0
"""How long a refresh or an import may take: it only reads."""


@dataclass(frozen=True)
class Session:
    """What one step works with: the client and the operation, bound to one deadline."""

    api: MixpeekClient
    op: Operation


@dataclass(frozen=True)
class Door:
    """What a front door supplies to a step: its config, where the step's lines go, the
    resource's name, the engine's timeout and cancel signal where it has them, and the
    journal (the dynamic resources' only memory of a create cut short)."""

    config: ProviderConfig
    sink: LogSink
    name: str
    seconds: float | None = None
    """The engine's timeout for this step (``customTimeouts``); None: ``timeout_seconds``."""
    timeout_name: str = ""
    cancel: threading.Event | None = None
    journal: Journal | None = None

    def with_seconds(self, seconds: float, timeout_name: str = "") -> Door:
        return dataclasses.replace(self, seconds=seconds, timeout_name=timeout_name)

    @contextmanager
    def session(self, kind: str, subject: Inputs | State) -> Iterator[Session]:
        """The step's client and operation for ``subject`` (inputs or state), both bound to
        one deadline: the engine's timeout when it sent one, else the resource's
        ``timeout_seconds``, else a read's cap."""
        declared: float = getattr(subject, "timeout_seconds", REFRESH_SECONDS)
        limit = self.seconds if self.seconds is not None else declared
        op = Operation(
            kind,
            getattr(subject, "resource_name", "") or self.name,
            self.sink,
            Deadline.after(limit, cancel=self.cancel),
            timeout_name=self.timeout_name or f"timeout_seconds={limit:g}",
            journal=self.journal,
        )
        cfg = self.config.with_base_url(getattr(subject, "base_url", None))
        with MixpeekClient.from_config(cfg, log=op.say, deadline=op.deadline) as api:
            yield Session(api, op)


class Lifecycle(ABC, Generic[InputsT, StateT]):
    """One resource kind: its models and what each step does, typed end to end."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """What the resource is, in one sentence: the schema's description of it."""
    path: ClassVar[str] = ""
    """The input naming local files (a bundle, a plugin source): what an import cannot know."""
    inputs: type[InputsT]
    state: type[StateT]

    def check(self, inputs: InputsT | None, unknown: set[str], olds: Mapping[str, Any]) -> Checked:
        """What ``check`` computes beyond validation, and the failures it finds, before
        anything is sent; ``inputs`` is None when they did not validate."""
        return {}, []

    def probe(self, props: Mapping[str, Any]) -> Probe | None:
        """The cheap authenticated call that checks the API key for this kind, once per
        process (``credentials``); None while the inputs it needs are unknown. The apps list
        by default: every app route needs the same key."""
        return lambda api: api.list_apps(limit=1)

    @abstractmethod
    def diff(self, olds: StateT, news: Mapping[str, Any], unknown: set[str]) -> Diff: ...

    @abstractmethod
    def create(self, s: Session, inputs: InputsT) -> StateT: ...

    @abstractmethod
    def update(self, s: Session, olds: StateT, inputs: InputsT) -> StateT: ...

    @abstractmethod
    def read(self, s: Session, state: StateT) -> StateT | None:
        """The state as the service has it now; None when it is gone."""

    @abstractmethod
    def delete(self, s: Session, state: StateT) -> None: ...

    @abstractmethod
    def import_(self, s: Session, resource_id: str) -> StateT | None:
        """What ``pulumi import <id>`` reads into state: what the service serves, no deploy."""


class Kind(Protocol):
    """A kind as the front doors see it: engine properties in, typed state out."""

    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def inputs(self) -> type[Inputs]: ...
    @property
    def state(self) -> type[State]: ...

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Checked:
        """The inputs validated and what ``check`` computes, or the failures."""

    def probe(self, props: Mapping[str, Any]) -> Probe | None: ...

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Diff: ...
    def create(self, door: Door, props: Mapping[str, Any]) -> State: ...
    def update(self, door: Door, olds: Mapping[str, Any], news: Mapping[str, Any]) -> State: ...
    def read(self, door: Door, props: Mapping[str, Any]) -> State | None: ...
    def delete(self, door: Door, props: Mapping[str, Any]) -> None: ...
    def import_(self, door: Door, resource_id: str) -> State | None: ...


class Registered(Generic[InputsT, StateT]):
    """A ``Lifecycle`` behind the ``Kind`` seam: properties parsed into its own models."""

    def __init__(self, lifecycle: Lifecycle[InputsT, StateT]) -> None:
        self.lifecycle = lifecycle

    @property
    def name(self) -> str:
        return self.lifecycle.name

    @property
    def summary(self) -> str:
        return self.lifecycle.summary

    @property
    def path(self) -> str:
        return self.lifecycle.path

    @property
    def inputs(self) -> type[InputsT]:
        return self.lifecycle.inputs

    @property
    def state(self) -> type[StateT]:
        return self.lifecycle.state

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Checked:
        inputs, failures = validate_inputs(self.inputs, news, unknown)
        computed, more = self.lifecycle.check(inputs, unknown, olds)
        return computed, failures + more

    def probe(self, props: Mapping[str, Any]) -> Probe | None:
        return self.lifecycle.probe(props)

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return self.lifecycle.diff(self.state.load(olds), news, unknown)

    def create(self, door: Door, props: Mapping[str, Any]) -> StateT:
        inputs = self.inputs.parse(props)
        with door.session(self.name, inputs) as s:
            return self.lifecycle.create(s, inputs)

    def update(self, door: Door, olds: Mapping[str, Any], news: Mapping[str, Any]) -> StateT:
        old, inputs = self.state.load(olds), self.inputs.parse(news)
        with door.session(self.name, inputs) as s:
            return self.lifecycle.update(s, old, inputs)

    def read(self, door: Door, props: Mapping[str, Any]) -> StateT | None:
        state = self.state.load(props)
        with door.with_seconds(REFRESH_SECONDS).session(self.name, state) as s:
            return self.lifecycle.read(s, state)

    def delete(self, door: Door, props: Mapping[str, Any]) -> None:
        state = self.state.load(props)
        with door.session(self.name, state) as s:
            self.lifecycle.delete(s, state)

    def import_(self, door: Door, resource_id: str) -> StateT | None:
        with door.with_seconds(REFRESH_SECONDS).session(self.name, Inputs()) as s:
            return self.lifecycle.import_(s, resource_id)


def checked(
    config: ProviderConfig,
    kind: Kind,
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    unknown: set[str],
    *,
    cancel: threading.Event | None = None,
) -> Checked:
    """A front door's ``check``: the inputs validated, and, once they are, the API key
    checked with the service the first time this process needs it (``credentials``), so a
    dead key fails the preview; ``cancel`` (the engine's Ctrl-C) ends the check's wait."""
    computed, failures = kind.check(olds, news, unknown)
    if not failures and "base_url" not in unknown:
        probe = kind.probe(news)
        if probe is not None:
            where = config.with_base_url(news.get("base_url"))
            credentials.ensure(where, probe, cancel=cancel)
    return computed, failures


def failure(exc: BaseException, kind: str, name: str) -> MixpeekError:
    """What the user reads for anything a step raised: a deploy error as it is (it carries
    the id, status and partial state), any other of ours or an OS error headed by the
    resource, and a bug as one sentence followed by the redacted traceback."""
    if isinstance(exc, DeployError):
        return exc
    if isinstance(exc, MixpeekError | OSError):
        return ResourceError(kind, name, exc)
    detail = redact("".join(traceback.format_exception(exc)))
    return MixpeekError(
        f"{kind} '{name}': internal error ({type(exc).__name__}); please report it with the "
        f"lines below\n{detail}"
    )
