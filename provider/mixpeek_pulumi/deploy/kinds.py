"""Each resource's lifecycle as one table of steps: the single implementation both front doors
(the dynamic resources and the native provider) call, each in its own wire format."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from ..client import MixpeekClient
from ..config import ProviderConfig
from ..deadline import Deadline
from ..journal import Journal
from ..spec import (
    AppDeployInputs,
    AppDeployState,
    AppPromotionInputs,
    AppPromotionState,
    Inputs,
    PluginDeploymentInputs,
    PluginDeploymentState,
    State,
)
from . import apps, environments, plugins, promotions
from .common import Diff, Failure, LogSink, Operation, validate_inputs

Checked = tuple[dict[str, Any], list[Failure]]

REFRESH_SECONDS: Final = 300.0
"""How long a refresh or an import may take: it only reads."""


@dataclass(frozen=True)
class Kind:
    """One resource type: its models and what each lifecycle step does."""

    name: str
    summary: str
    """What the resource is, in one sentence: the schema's description of it."""
    inputs: type[Inputs]
    state: type[State]
    path: str
    """The input naming local files (a bundle, a plugin source): what an import cannot know."""
    extra_check: Callable[[Any, set[str], Mapping[str, Any]], Checked]
    diff: Callable[[Any, Mapping[str, Any], set[str]], Diff]
    create: Callable[[MixpeekClient, Operation, Any], State]
    update: Callable[[MixpeekClient, Operation, Any, Any], State]
    read: Callable[[MixpeekClient, Operation, Any], State | None]
    delete: Callable[[MixpeekClient, Operation, Any], None]
    adopt: Callable[[MixpeekClient, Operation, str], State | None]
    """What ``pulumi import <id>`` reads into state: what the service serves now, no deploy."""

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any], unknown: set[str]) -> Checked:
        """The inputs validated and what ``check`` computes, or the failures, before anything
        is sent."""
        inputs, failures = validate_inputs(self.inputs, news, unknown)
        computed, more = self.extra_check(inputs, unknown, olds)
        return computed, failures + more

    @contextmanager
    def session(
        self,
        config: ProviderConfig,
        subject: Inputs | State,
        sink: LogSink,
        *,
        seconds: float | None = None,
        timeout_name: str = "",
        name: str = "",
        cancel: threading.Event | None = None,
        journal: Journal | None = None,
    ) -> Iterator[tuple[MixpeekClient, Operation]]:
        """A client and the operation's context for ``subject`` (inputs or state), both bound
        to one deadline: ``seconds`` (the engine's timeout, a read's cap), else the resource's
        ``timeout_seconds``."""
        declared: float = getattr(subject, "timeout_seconds", REFRESH_SECONDS)
        limit = seconds if seconds is not None else declared
        who = getattr(subject, "resource_name", "") or name
        op = Operation(
            self.name,
            who,
            sink,
            Deadline.after(limit, cancel=cancel),
            timeout_name=timeout_name or f"timeout_seconds={limit:g}",
            journal=journal,
        )
        cfg = config.with_base_url(getattr(subject, "base_url", None))
        with MixpeekClient.from_config(cfg, log=op.say, deadline=op.deadline) as api:
            yield api, op


def _no_check(_inputs: Any, _unknown: set[str], _olds: Mapping[str, Any]) -> Checked:
    return {}, []


KINDS: Final[dict[str, Kind]] = {
    "AppDeploy": Kind(
        name="AppDeploy",
        summary="A Mixpeek App deploy of a build folder or .zip, live once `pulumi up` returns.",
        inputs=AppDeployInputs,
        state=AppDeployState,
        path="bundle",
        extra_check=lambda inputs, unknown, _olds: apps.check(inputs, unknown),
        diff=apps.diff,
        create=lambda api, op, inputs: apps.AppDeployer(api, op).deploy(
            inputs, previous=None, first=True
        ),
        update=lambda api, op, olds, inputs: apps.AppDeployer(api, op).update(olds, inputs),
        read=lambda api, _op, state: environments.refresh_deploy(api, state),
        delete=lambda api, op, state: environments.roll_back(api, op, state, "deploy"),
        adopt=lambda api, op, id_: apps.AppDeployer(api, op).adopt(id_),
    ),
    "AppPromotion": Kind(
        name="AppPromotion",
        summary="Serves an exact, already built App version in an environment (an instant "
        "restore, no rebuild), gated on its deploy's smoke test.",
        inputs=AppPromotionInputs,
        state=AppPromotionState,
        path="",
        extra_check=_no_check,
        diff=promotions.diff,
        create=lambda api, op, inputs: promotions.Promoter(api, op).promote(
            inputs, previous=None, first=True
        ),
        update=lambda api, op, olds, inputs: promotions.Promoter(api, op).update(olds, inputs),
        read=lambda api, _op, state: environments.refresh(api, state),
        delete=lambda api, op, state: environments.roll_back(api, op, state, "promotion"),
        adopt=lambda api, op, id_: promotions.Promoter(api, op).adopt(id_),
    ),
    "PluginDeployment": Kind(
        name="PluginDeployment",
        summary="A Mixpeek custom plugin uploaded, validated and deployed for realtime "
        "inference under its `routePrefix`.",
        inputs=PluginDeploymentInputs,
        state=PluginDeploymentState,
        path="source",
        extra_check=plugins.check,
        diff=plugins.diff,
        create=lambda api, op, inputs: plugins.PluginRollout(api, op).create(inputs),
        update=lambda api, op, olds, inputs: plugins.PluginRollout(api, op).update(olds, inputs),
        read=lambda api, op, state: plugins.PluginRollout(api, op).read(state),
        delete=lambda api, op, state: plugins.PluginRollout(api, op).remove(state),
        adopt=lambda api, op, id_: plugins.PluginRollout(api, op).adopt(id_),
    ),
}
