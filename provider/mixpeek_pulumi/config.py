"""Where the endpoint and API key come from: stack config first, then the environment.

Plain data, no I/O. The key lives only in memory of the provider process: it is read in
``configure()`` (which runs there) and never stored on anything that gets pickled into state.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import ConfigError, register_secret

DEFAULT_BASE_URL: Final = "https://api.mixpeek.com"
CONFIG_API_KEY: Final = "mixpeek:apiKey"
CONFIG_BASE_URL: Final = "mixpeek:baseUrl"
ENV_API_KEY: Final = "MIXPEEK_API_KEY"
ENV_BASE_URL: Final = "MIXPEEK_BASE_URL"
ENV_READ_TIMEOUT: Final = "MIXPEEK_HTTP_READ_TIMEOUT"
DEFAULT_READ_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class ProviderConfig:
    """The endpoint and key one provider process uses; ``repr`` never shows the key."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def resolve(
        cls,
        get: Callable[[str], Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ProviderConfig:
        """Read ``mixpeek:apiKey``/``mixpeek:baseUrl`` via ``get``, else the environment."""
        env = os.environ if env is None else env
        lookup = get or (lambda _key: None)
        api_key = _text(lookup(CONFIG_API_KEY)) or _text(env.get(ENV_API_KEY))
        base_url = (
            _text(lookup(CONFIG_BASE_URL)) or _text(env.get(ENV_BASE_URL)) or DEFAULT_BASE_URL
        )
        register_secret(api_key)
        try:
            read_timeout = float(env.get(ENV_READ_TIMEOUT) or DEFAULT_READ_TIMEOUT)
        except ValueError:
            raise ConfigError(f"{ENV_READ_TIMEOUT} must be a number of seconds.") from None
        return cls(normalize_base_url(base_url), api_key, read_timeout)

    def with_base_url(self, base_url: str | None) -> ProviderConfig:
        """This config with a per-resource endpoint override applied."""
        if not base_url:
            return self
        return dataclasses.replace(self, base_url=normalize_base_url(base_url))

    def require_key(self) -> str:
        """The API key, or a one-sentence error naming both places to set it."""
        if not self.api_key:
            raise ConfigError(
                "No Mixpeek API key is configured: run `pulumi config set mixpeek:apiKey "
                f"--secret <key>` or set the {ENV_API_KEY} environment variable."
            )
        return self.api_key


def normalize_base_url(url: str) -> str:
    """Strip a trailing ``/v1``: paths carry it, and dedicated hosts are documented with it."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"The Mixpeek base URL {url!r} is not an http(s) URL: set `mixpeek:baseUrl` "
            f"or {ENV_BASE_URL} to something like {DEFAULT_BASE_URL}."
        )
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
