"""The one check of the API key a provider process makes: the first time a resource needs the
service (its ``check``, so in a preview too), one cheap authenticated call per endpoint and
key, so a wrong or revoked key fails the preview that CI runs, not the next real change.

``mixpeek:skipCredentialsValidation`` (or ``MIXPEEK_SKIP_CREDENTIALS_VALIDATION``) turns it
off, for a preview that works offline.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Final

from .client import MixpeekClient
from .config import CONFIG_API_KEY, CONFIG_SKIP_CHECK, ProviderConfig
from .deadline import Deadline
from .errors import (
    AuthenticationError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    first_line,
)

PROBE_SECONDS: Final = 60.0
Probe = Callable[[MixpeekClient], object]

_CHECKED: dict[tuple[str, str], ConfigError | None] = {}
_LOCK = threading.Lock()


def ensure(config: ProviderConfig, probe: Probe) -> None:
    """Raise ``ConfigError`` when the service refuses the key (401, 403), naming where the
    key came from; every later call for the same endpoint and key answers from memory. Other
    failures (the address unreachable) are raised as they are, and asked again next time."""
    if config.skip_credentials_check:
        return
    key = config.require_key()
    base = config.base_url
    seen = (base, hashlib.sha256(key.encode()).hexdigest())
    with _LOCK:  # the first check decides; resources checked meanwhile wait for it
        if seen not in _CHECKED:
            _CHECKED[seen] = _refusal(config, base, probe)
        refused = _CHECKED[seen]
    if refused is not None:
        raise refused


def _refusal(config: ProviderConfig, base: str, probe: Probe) -> ConfigError | None:
    with MixpeekClient.from_config(config, deadline=Deadline.after(PROBE_SECONDS)) as api:
        try:
            probe(api)
        except NotFoundError:
            return None  # the key was accepted; the thing asked for does not exist yet
        except (AuthenticationError, PermissionDeniedError) as exc:
            return ConfigError(
                f"The Mixpeek API key from {config.key_source} was refused by {base} "
                f"({first_line(exc)}); set a valid key with `pulumi config set --secret "
                f"{CONFIG_API_KEY} <key>` (or MIXPEEK_API_KEY), or set `{CONFIG_SKIP_CHECK}` "
                "to true to preview without asking the service."
            )
    return None
