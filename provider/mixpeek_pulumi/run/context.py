"""The one context of one call of one resource: who it is, the API client bound to the call's
one deadline, where its lines go, and the journal; every error the deploy layer raises is built
here, and ``failure`` words whatever else a step raised.

A front door opens it (``Context.open``) with what it has: the engine's timeout for the verb
where it sent one (``customTimeouts``), else the resource's ``timeout_seconds``; the engine's
Cancel; the sink its lines go to, which is where they are redacted.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from ..api.client import MixpeekClient
from ..config import ProviderConfig
from ..deadline import Deadline
from ..errors import DeployError, DeployFailedError, DeployTimeoutError, MixpeekError, ResourceError
from .journal import Journal

Say = Callable[[str], None]
READ_SECONDS: Final = 300.0
"""How long a refresh or an import may take: it only reads."""


@dataclass(frozen=True)
class Context:
    """One lifecycle call of one resource."""

    kind: str
    name: str
    api: MixpeekClient
    say: Say
    """Where the call's lines go (the front door redacts them there)."""
    deadline: Deadline = field(default_factory=Deadline.never)
    timeout_name: str = "the timeout"
    """How the deadline is named in messages: ``timeout_seconds=1800`` or the engine's own."""
    journal: Journal | None = None
    """Where deploys in flight are remembered between runs: the dynamic resources' only memory
    of a create cut short. None for the native provider, whose stack state keeps it."""

    @classmethod
    @contextmanager
    def open(
        cls,
        kind: str,
        name: str,
        *,
        config: ProviderConfig,
        say: Say,
        subject: object,
        seconds: float | None = None,
        timeout_name: str = "",
        cancel: threading.Event | None = None,
        journal: Journal | None = None,
    ) -> Iterator[Context]:
        """The call's context for ``subject`` (its inputs or state): one deadline, the
        engine's ``seconds`` when it sent them, else the subject's ``timeout_seconds``, else a
        read's cap; one client bound to it, at the subject's ``base_url`` when it has one."""
        declared: float = getattr(subject, "timeout_seconds", READ_SECONDS)
        limit = seconds if seconds is not None else declared
        deadline = Deadline.after(limit, cancel=cancel)
        named = getattr(subject, "resource_name", "") or name
        where = config.with_base_url(getattr(subject, "base_url", None))
        with MixpeekClient.from_config(where, log=say, deadline=deadline) as api:
            yield cls(
                kind,
                named,
                api,
                say,
                deadline,
                timeout_name or f"timeout_seconds={limit:g}",
                journal,
            )

    @contextmanager
    def bound(self, deadline: Deadline) -> Iterator[Context]:
        """This call under another deadline, for a step with a bound of its own (the checks
        after a switch, a rollback): a slow build never shortens it."""
        with self.api.bound(deadline) as api:
            yield dataclasses.replace(self, api=api, deadline=deadline)

    @property
    def who(self) -> str:
        return f"{self.kind} '{self.name}'"

    @property
    def cancel(self) -> threading.Event | None:
        return self.deadline.cancel

    def why_stopped(self) -> str:
        """How a wait that ended early ended: the engine interrupted it, or the deadline passed."""
        if self.deadline.cancelled:
            return "was interrupted before it finished"
        return f"did not finish within {self.timeout_name}"

    def failed(
        self,
        what: str,
        *,
        subject: str,
        status: str,
        reason: str,
        log_tail: Iterable[str] = (),
        partial: Any = None,
    ) -> DeployFailedError:
        """The one way the deploy layer says something ended badly: ``what`` happened to
        ``subject`` (a deploy, plugin or upload id), headed by the resource; ``partial`` is
        what exists now, for a front door that keeps it (a switch left unverified)."""
        return DeployFailedError(
            f"{self.who}: {what}",
            resource=self.name,
            subject_id=subject,
            status=status,
            reason=reason,
            log_tail=log_tail,
            partial=partial,
        )

    def timed_out(
        self,
        what: str,
        *,
        subject: str,
        status: str,
        then: str = "",
        log_tail: Iterable[str] = (),
        partial: Any = None,
    ) -> DeployTimeoutError:
        """The one way a wait ends early: ``what`` was waited on, whether the deadline passed or
        the engine interrupted it, the last status read, what happens next, and what exists
        (``partial``) for a front door that keeps it."""
        text = f"{self.who}: {what} {self.why_stopped()} (last status {status})"
        reason = "interrupted" if self.deadline.cancelled else "timeout"
        return DeployTimeoutError(
            f"{text}; {then}" if then else text,
            resource=self.name,
            subject_id=subject,
            status=status,
            reason=reason,
            log_tail=log_tail,
            partial=partial,
        )


def failure(exc: BaseException, kind: str, name: str) -> MixpeekError:
    """What the user reads for anything a step raised: a deploy error as it is (it carries
    the id, status and partial state), any other of ours or an OS error headed by the
    resource, and a bug as one sentence followed by its traceback."""
    if isinstance(exc, DeployError):
        return exc
    if isinstance(exc, MixpeekError | OSError):
        return ResourceError(kind, name, exc)
    detail = "".join(traceback.format_exception(exc))
    return MixpeekError(
        f"{kind} '{name}': internal error ({type(exc).__name__}); please report it with the "
        f"lines below\n{detail}"
    )
