"""The deploy layer in-process: each kind's verbs called as a front door calls them (the
kind from ``kinds.registry``, inside a ``Context``), against the emulator on loopback, with no provider host, plugin or CLI.

``Resource`` plays the engine for one resource: check, then create or diff and update, refresh
and delete, keeping the state between runs. Like the native provider's engine it keeps the
partial state a failure carries (``keeps_partial``); without it, like the dynamic host, a
failed create leaves no state and only the journal remembers. ``drops_nulls`` keeps the state
as the dynamic host stores it, with every null output left out. ``preview`` shows what a
preview would (inputs the engine does not know yet, the diff's kinds and notes), and ``step``
names what the last ``up`` did, as the engine names its steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixpeek_pulumi.config import ProviderConfig
from mixpeek_pulumi.deadline import Cancellation
from mixpeek_pulumi.errors import DeployError
from mixpeek_pulumi.kinds.base import AnyKind, check_inputs
from mixpeek_pulumi.kinds.diffs import Diff
from mixpeek_pulumi.kinds.registry import COMING, KINDS
from mixpeek_pulumi.kinds.spec import State
from mixpeek_pulumi.run.context import READ_SECONDS, Context, failure
from mixpeek_pulumi.run.journal import Journal
from tests.emulator_fixture import EmulatorHandle


class CheckFailed(Exception):
    def __init__(self, failures: list[Any]) -> None:
        super().__init__("; ".join(f"{f.field}: {f.reason}" for f in failures))
        self.failures = failures


@dataclass
class Resource:
    kind: str
    name: str
    emulator: EmulatorHandle
    journal_dir: Path | None
    keeps_partial: bool = True
    lines: list[str] = field(default_factory=list)
    state: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    cancel: Cancellation = field(default_factory=Cancellation)
    config: ProviderConfig | None = None
    """The provider's settings; by default the emulator's address and key, as stack config."""
    drops_nulls: bool = False
    """Keep the state as the dynamic host does: its outputs with every null one left out."""
    id: str | None = None
    """The id the engine records for the resource (set by a create or a replace)."""
    step: str | None = None
    """What the last ``up`` did, as the engine's steps are named: ``create``, ``same``,
    ``update`` or ``replace`` (a create of the new one, then a delete of the old)."""

    @property
    def kind_(self) -> AnyKind:
        """The kind, from the registry or from the kinds still coming (no front door yet)."""
        return KINDS.get(self.kind) or COMING[self.kind]

    def settings(self) -> ProviderConfig:
        return self.config or ProviderConfig(
            self.emulator.url, "`mixpeek:baseUrl`", self.emulator.api_key
        )

    @contextmanager
    def context(self, subject: object, seconds: float | None = None) -> Iterator[Context]:
        journal = Journal(self.journal_dir) if self.journal_dir is not None else None
        with Context.open(
            self.kind,
            self.name,
            config=self.settings(),
            say=self.lines.append,
            subject=subject,
            seconds=seconds,
            cancel=self.cancel,
            journal=journal,
        ) as ctx:
            yield ctx

    def check(self, *, unknown: Iterable[str] = (), **inputs: Any) -> dict[str, Any]:
        """The inputs checked, as a front door checks them; ``unknown`` names inputs a
        preview does not know yet (another resource's output), left out of ``inputs``."""
        props = {**inputs, "resource_name": self.name}
        computed, failures = check_inputs(
            self.settings(), self.kind_, self.state or {}, props, set(unknown)
        )
        if failures:
            raise CheckFailed(failures)
        return {**props, **computed}

    def preview(self, *, unknown: Iterable[str] = (), **inputs: Any) -> Diff | None:
        """What a preview does: check, then the diff from the state (None when there is
        none: a create), its notes said as both front doors say them. Nothing is deployed."""
        unknowns = set(unknown)
        news = self.check(unknown=unknowns, **inputs)
        if self.state is None:
            return None
        kind = self.kind_
        diff = kind.diff(kind.state.load(self.state), news, unknowns)
        self.lines.extend(diff.notes)
        return diff

    def up(self, **inputs: Any) -> dict[str, Any]:
        """Check, then create (no state), or update or replace as the diff says (its notes
        said, as in a real run); the outputs. ``step`` tells which it was."""
        kind = self.kind_
        news = self.check(**inputs)
        self.inputs = news
        try:
            parsed = kind.inputs.parse(news)
            if self.state is None:
                self.step = "create"
                with self.context(parsed) as ctx:
                    state = kind.create(ctx, parsed)
            else:
                old = kind.state.load(self.state)
                diff = kind.diff(old, news, set())
                self.lines.extend(diff.notes)
                if not diff.changed:
                    self.step = "same"
                    return self.state
                if diff.replaces:
                    # The engine's default: the new one first, then the old one goes.
                    self.step = "replace"
                    with self.context(parsed) as ctx:
                        state = kind.create(ctx, parsed)
                    with self.context(old) as ctx:
                        kind.delete(ctx, old)
                else:
                    self.step = "update"
                    with self.context(parsed) as ctx:
                        state = kind.update(ctx, old, parsed)
        except Exception as exc:
            error = failure(exc, kind.name, self.name)
            if isinstance(error, DeployError) and error.partial is not None and self.keeps_partial:
                if self.step == "create":
                    self.id = error.partial.resource_id
                self.state = self.kept(error.partial)
            raise error from None
        if self.step != "update":
            self.id = state.resource_id
        self.state = self.kept(state)
        return self.state

    def imported(self, resource_id: str) -> dict[str, Any] | None:
        """What ``pulumi import <resource_id>`` reads into this resource's state."""
        with self.context(None, READ_SECONDS) as ctx:
            found = self.kind_.import_(ctx, resource_id)
        if found is None:
            self.state = None
        else:
            self.id = found.resource_id
            self.state = self.kept(found)
        return self.state

    def kept(self, state: State) -> dict[str, Any]:
        """The state as the front door stores it."""
        outputs = state.to_outputs()
        if self.drops_nulls:
            return {k: v for k, v in outputs.items() if v is not None}
        return outputs

    def refresh(self) -> dict[str, Any] | None:
        assert self.state is not None
        state = self.kind_.state.load(self.state)
        with self.context(state, READ_SECONDS) as ctx:
            now = self.kind_.read(ctx, state)
        self.state = None if now is None else self.kept(now)
        return self.state

    def destroy(self) -> None:
        if self.state is not None:
            state = self.kind_.state.load(self.state)
            with self.context(state) as ctx:
                self.kind_.delete(ctx, state)
        self.state = None
        self.id = None

    def said(self) -> str:
        return "\n".join(self.lines)
