"""The one base every resource kind derives from: the same verbs (check, diff, create, update,
read, delete, import) over the kind's own typed inputs and state, so the type checker refuses
plugin inputs handed to an app deploy. A kind is its own lifecycle: the class the registry lists
is the one that deploys, and a front door calls its verbs directly, with a ``Context`` it
opened and the models it parsed the engine's properties into.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ..api import credentials
from ..api.client import MixpeekClient
from ..config import ProviderConfig
from ..deadline import Deadline
from ..errors import MixpeekError
from ..run.context import Context
from .diffs import Diff, Failure, validate_inputs
from .spec import Inputs, State

InputsT = TypeVar("InputsT", bound=Inputs)
StateT = TypeVar("StateT", bound=State)
Checked = tuple[dict[str, Any], list[Failure]]
Probe = credentials.Probe
Recall = Callable[[MixpeekClient], dict[str, Any]]


class Kind(ABC, Generic[InputsT, StateT]):
    """One resource kind: its models and what each verb does, typed end to end."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """What the resource is, in one sentence: the schema's description of it."""
    path: ClassVar[str] = ""
    """The input naming local files (a bundle, a plugin source): what an import cannot know."""
    path_change: ClassVar[str] = ""
    """What changing the files behind ``path`` does, for the schema (else: an update)."""
    details: ClassVar[str] = ""
    """What each verb does at the service and how to import it, for the schema and docs."""
    inputs: type[InputsT]
    state: type[StateT]

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Checked:
        """The inputs validated and what ``check`` computes (``computed``), or the failures;
        nothing is sent anywhere."""
        inputs, failures = validate_inputs(self.inputs, news, unknown)
        computed, more = self.computed(inputs, unknown, olds)
        return computed, failures + more

    def computed(
        self, inputs: InputsT | None, unknown: set[str], olds: Mapping[str, Any]
    ) -> Checked:
        """What ``check`` computes beyond validation, and the failures it finds, before
        anything is sent; ``inputs`` is None when they did not validate."""
        return {}, []

    def probe(self, props: Mapping[str, Any]) -> Probe | None:
        """The cheap authenticated call that checks the API key for this kind, once per
        process (``credentials``); None while the inputs it needs are unknown. The apps list
        by default: every app route needs the same key."""
        return lambda api: api.list_apps(limit=1)

    def recall(self, olds: Mapping[str, Any], computed: Mapping[str, Any]) -> Recall | None:
        """For ``check`` of an update: a read of what the update keeps and only the service
        can say, when the old inputs lack it (an App's id, before the inputs kept it), merged
        into what ``check`` computes so a preview knows it; None when nothing is to be read."""
        return None

    @abstractmethod
    def diff(self, olds: StateT, news: Mapping[str, Any], unknown: set[str]) -> Diff: ...

    @abstractmethod
    def create(self, ctx: Context, inputs: InputsT) -> StateT: ...

    @abstractmethod
    def update(self, ctx: Context, olds: StateT, inputs: InputsT) -> StateT: ...

    @abstractmethod
    def read(self, ctx: Context, state: StateT) -> StateT | None:
        """The state as the service has it now; None when it is gone."""

    @abstractmethod
    def delete(self, ctx: Context, state: StateT) -> None: ...

    @abstractmethod
    def import_(self, ctx: Context, resource_id: str) -> StateT | None:
        """What ``pulumi import <id>`` reads into state: what the service serves, no deploy."""


AnyKind = Kind[Any, Any]
"""A kind as the registry and the front doors hold it: each parses the engine's properties
into the kind's own models (``kind.inputs``, ``kind.state``) before calling a verb."""


def check_inputs(
    config: ProviderConfig,
    kind: AnyKind,
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
        recall = kind.recall(olds, computed) if olds else None
        if recall is not None and not config.skip_credentials_check:
            computed = {
                **_recalled(config.with_base_url(news.get("base_url")), recall, cancel),
                **computed,
            }
    return computed, failures


RECALL_SECONDS = 10.0
"""How long ``check`` waits for a recall before leaving the value unknown to the preview."""


def _recalled(
    config: ProviderConfig, recall: Recall, cancel: threading.Event | None
) -> dict[str, Any]:
    """What ``recall`` reads; nothing when the service cannot say now: the preview then shows
    the value as unknown, as it would have anyway."""
    try:
        deadline = Deadline.after(RECALL_SECONDS, cancel=cancel)
        with MixpeekClient.from_config(config, deadline=deadline) as api:
            return recall(api)
    except MixpeekError:
        return {}
