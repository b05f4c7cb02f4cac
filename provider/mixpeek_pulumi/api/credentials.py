"""The one check of the API key a provider process makes: the first time a resource needs the
service (its ``check``, so in a preview too), one cheap authenticated call per endpoint and
key, so a wrong or revoked key (401) fails the preview that CI runs, not the next real change.

``mixpeek:skipCredentialsValidation`` (or ``MIXPEEK_SKIP_CREDENTIALS_VALIDATION``) turns it
off, for a preview that works offline.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Final

from ..config import CONFIG_API_KEY, CONFIG_SKIP_CHECK, ProviderConfig
from ..deadline import Deadline
from ..errors import (
    ApiInterruptedError,
    AuthenticationError,
    ConfigError,
    MixpeekError,
    NotFoundError,
    PermissionDeniedError,
    first_line,
)
from .client import MixpeekClient

PROBE_SECONDS: Final = 15.0
"""The bound of the one check: a preview is not held a minute by an endpoint that never
answers (every operation after it would fail on that endpoint anyway)."""
Probe = Callable[[MixpeekClient], object]

_CHECKED: dict[tuple[str, str], MixpeekError | None] = {}
_LOCK = threading.Lock()


def ensure(config: ProviderConfig, probe: Probe, *, cancel: threading.Event | None = None) -> None:
    """Raise ``ConfigError`` when the service refuses the key (401), naming where the key came
    from, or the error that kept the check from an answer; every later call for the same
    endpoint and key answers from memory, so resources are never checked one after another.
    A 403 is an answer about what the key may do, not about the key: it passes."""
    if config.skip_credentials_check:
        return
    key = config.require_key()
    base = config.base_url
    seen = (base, hashlib.sha256(key.encode()).hexdigest())
    with _LOCK:  # the first check decides; resources checked meanwhile wait for it
        if seen not in _CHECKED:
            _CHECKED[seen] = _refusal(config, base, probe, cancel)
        refused = _CHECKED[seen]
    if refused is not None:
        raise refused


def _refusal(
    config: ProviderConfig, base: str, probe: Probe, cancel: threading.Event | None
) -> MixpeekError | None:
    deadline = Deadline.after(PROBE_SECONDS, cancel=cancel)
    with MixpeekClient.from_config(config, deadline=deadline) as api:
        try:
            probe(api)
        except (NotFoundError, PermissionDeniedError):
            return None  # the key was accepted: what it asked for is missing or not its own
        except AuthenticationError as exc:
            return ConfigError(
                f"The Mixpeek API key from {config.key_source} was refused by {base} "
                f"({first_line(exc)}); set a valid key with `pulumi config set --secret "
                f"{CONFIG_API_KEY} <key>` (or MIXPEEK_API_KEY), or set `{CONFIG_SKIP_CHECK}` "
                "to true to preview without asking the service."
            )
        except ApiInterruptedError:
            raise  # a Ctrl-C is this call's, never remembered for the next
        except MixpeekError as exc:
            return exc
    return None
