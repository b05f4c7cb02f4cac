"""The deploy layer in-process: each kind's verbs called as a front door calls them (through
``deploy.kinds``), against the emulator on loopback, with no provider host, plugin or CLI.

``Resource`` plays the engine for one resource: check, then create or diff and update, refresh
and delete, keeping the state between runs. Like the native provider's engine it keeps the
partial state a failure carries (``keeps_partial``); without it, like the dynamic host, a
failed create leaves no state and only the journal remembers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixpeek_pulumi.config import ProviderConfig
from mixpeek_pulumi.deadline import Cancellation
from mixpeek_pulumi.errors import DeployError
from mixpeek_pulumi.kinds.base import Door, checked, failure
from mixpeek_pulumi.kinds.registry import KINDS
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

    def door(self) -> Door:
        config = self.config or ProviderConfig(
            self.emulator.url, "`mixpeek:baseUrl`", self.emulator.api_key
        )
        journal = Journal(self.journal_dir) if self.journal_dir is not None else None
        return Door(config, self.lines.append, self.name, cancel=self.cancel, journal=journal)

    def check(self, **inputs: Any) -> dict[str, Any]:
        props = {**inputs, "resource_name": self.name}
        steps = KINDS[self.kind]
        computed, failures = checked(self.door().config, steps, self.state or {}, props, set())
        if failures:
            raise CheckFailed(failures)
        return {**props, **computed}

    def up(self, **inputs: Any) -> dict[str, Any]:
        """Check, then create (no state) or update when the diff says so; the outputs."""
        steps = KINDS[self.kind]
        news = self.check(**inputs)
        self.inputs = news
        try:
            if self.state is None:
                state = steps.create(self.door(), news)
            elif steps.diff(self.state, news, set()).changed:
                state = steps.update(self.door(), self.state, news)
            else:
                return self.state
        except Exception as exc:
            error = failure(exc, steps.name, self.name)
            if isinstance(error, DeployError) and error.partial is not None and self.keeps_partial:
                self.state = error.partial.to_outputs()
            raise error from None
        self.state = state.to_outputs()
        return self.state

    def refresh(self) -> dict[str, Any] | None:
        assert self.state is not None
        now = KINDS[self.kind].read(self.door(), self.state)
        self.state = None if now is None else now.to_outputs()
        return self.state

    def destroy(self) -> None:
        if self.state is not None:
            KINDS[self.kind].delete(self.door(), self.state)
        self.state = None

    def said(self) -> str:
        return "\n".join(self.lines)
