"""Where the endpoint and API key come from: stack config first, then the environment.

Plain data, no I/O. The key lives only in memory of the provider process: it is read in
``configure()`` (which runs there) and never stored on anything that gets pickled into state.
Values are checked where they are used, never at start.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import ConfigError, register_secret

DEFAULT_BASE_URL: Final = "https://api.mixpeek.com"
CONFIG_API_KEY: Final = "mixpeek:apiKey"
CONFIG_BASE_URL: Final = "mixpeek:baseUrl"
CONFIG_SKIP_CHECK: Final = "mixpeek:skipCredentialsValidation"
ENV_API_KEY: Final = "MIXPEEK_API_KEY"
ENV_BASE_URL: Final = "MIXPEEK_BASE_URL"
ENV_SKIP_CHECK: Final = "MIXPEEK_SKIP_CREDENTIALS_VALIDATION"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
ENV_READ_TIMEOUT: Final = "MIXPEEK_HTTP_READ_TIMEOUT"
DEFAULT_READ_TIMEOUT: Final = 60.0
READ_TIMEOUT_RANGE: Final = (1.0, 3600.0)


@dataclass(frozen=True)
class ProviderConfig:
    """The endpoint and key one provider process uses; ``repr`` never shows the key.

    Settings are kept as given and checked when they are used, so a stray value in the
    environment never stops the provider from starting, and never matters when stack config
    sets that setting: a bad value fails the operation that needs it, in a sentence naming
    the setting it came from."""

    endpoint: str = DEFAULT_BASE_URL
    endpoint_source: str = "the default endpoint"
    """Where ``endpoint`` was set, as messages name it."""
    api_key: str | None = field(default=None, repr=False)
    read_timeout_setting: str | None = None
    """``MIXPEEK_HTTP_READ_TIMEOUT`` as the environment had it."""
    key_source: str = f"`{CONFIG_API_KEY}` (stack config)"
    """Where ``api_key`` was set, as messages name it."""
    skip_credentials_check: bool = False
    """``mixpeek:skipCredentialsValidation``: no check of the key before it is first used."""

    @classmethod
    def resolve(
        cls,
        get: Callable[[str], Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ProviderConfig:
        """Read ``mixpeek:apiKey``/``mixpeek:baseUrl`` via ``get``, else the environment;
        nothing is checked yet, so this never fails."""
        env = os.environ if env is None else env
        lookup = get or (lambda _key: None)
        api_key = _text(lookup(CONFIG_API_KEY))
        key_source = f"`{CONFIG_API_KEY}` (stack config)"
        if api_key is None:
            api_key, key_source = _text(env.get(ENV_API_KEY)), f"the {ENV_API_KEY} variable"
        register_secret(api_key)
        endpoint, source = DEFAULT_BASE_URL, "the default endpoint"
        if _text(lookup(CONFIG_BASE_URL)):
            endpoint, source = str(lookup(CONFIG_BASE_URL)), f"`{CONFIG_BASE_URL}`"
        elif _text(env.get(ENV_BASE_URL)):
            endpoint, source = str(env.get(ENV_BASE_URL)), f"the {ENV_BASE_URL} variable"
        skip = _text(lookup(CONFIG_SKIP_CHECK))
        if skip is None:
            skip = _text(env.get(ENV_SKIP_CHECK))
        return cls(
            endpoint,
            source,
            api_key,
            env.get(ENV_READ_TIMEOUT),
            key_source,
            (skip or "").lower() in _TRUE,
        )

    @property
    def base_url(self) -> str:
        """The endpoint, checked and normalized; ``ConfigError`` naming where it was set."""
        return normalize_base_url(self.endpoint, self.endpoint_source)

    @property
    def read_timeout(self) -> float:
        """Seconds each read may take; ``ConfigError`` naming the variable when it is bad."""
        return _read_timeout(self.read_timeout_setting)

    def with_base_url(self, base_url: str | None) -> ProviderConfig:
        """This config with a per-resource endpoint override applied."""
        if not base_url:
            return self
        return dataclasses.replace(
            self, endpoint=base_url, endpoint_source="the resource's `base_url`"
        )

    def require_key(self) -> str:
        """The API key, or a one-sentence error naming both places to set it."""
        if not self.api_key:
            raise ConfigError(
                "No Mixpeek API key is configured: run `pulumi config set mixpeek:apiKey "
                f"--secret <key>` or set the {ENV_API_KEY} environment variable."
            )
        if not self.api_key.isascii() or not self.api_key.isprintable() or " " in self.api_key:
            # The key itself is never shown, not even the offending character.
            raise ConfigError(
                "The Mixpeek API key cannot be sent in an HTTP header: it has a space, a "
                "control character or a character outside ASCII; check `mixpeek:apiKey` or "
                f"{ENV_API_KEY} for a stray paste."
            )
        return self.api_key


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the API endpoint, in words that never repeat a credential."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it is not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "it has a user name or password in it; put the API key in `mixpeek:apiKey` instead"
    if parts.query or parts.fragment:
        return "it has a query string or fragment"
    if not url.isascii() or any(c.isspace() for c in url.strip()):
        return "it has spaces or characters outside ASCII"
    return None


def normalize_base_url(url: str, source: str = "") -> str:
    """Strip a trailing ``/v1``: paths carry it, and dedicated hosts are documented with it.

    Raises ``ConfigError`` (without the URL's credentials, if it had any) for anything that is
    not a plain http(s) endpoint, naming ``source``, the setting it came from.
    """
    problem = base_url_problem(url)
    if problem is not None:
        shown = "" if "@" in url else f" {url.strip()[:200]!r}"
        where = f" from {source}" if source else ""
        raise ConfigError(
            f"The Mixpeek base URL{shown}{where} cannot be used: {problem} (set "
            f"`{CONFIG_BASE_URL}` or {ENV_BASE_URL} to something like {DEFAULT_BASE_URL})."
        )
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _read_timeout(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_READ_TIMEOUT
    low, high = READ_TIMEOUT_RANGE
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(
            f"{ENV_READ_TIMEOUT} must be a number of seconds from {low:g} to {high:g}, "
            f"not {raw.strip()[:20]!r}; fix or unset it in the environment of `pulumi`."
        )
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
