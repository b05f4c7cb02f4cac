"""A dead key fails the first check that needs the service, a preview's included: once per
provider process, naming where the key came from, unless the check is turned off."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_pulumi.config import ProviderConfig
from mixpeek_pulumi.errors import ConfigError
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make


def config(
    emulator: EmulatorHandle, given: dict[str, str], env: dict[str, str] | None = None
) -> ProviderConfig:
    settings = {"mixpeek:baseUrl": emulator.url, **given}
    return ProviderConfig.resolve(settings.get, env=env or {})


def bundle(tmp_path: Path) -> str:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    return str(folder)


@pytest.mark.parametrize(
    ("settings", "env", "source"),
    [
        ({"mixpeek:apiKey": "sk_revoked_0123456789"}, {}, "`mixpeek:apiKey` (stack config)"),
        ({}, {"MIXPEEK_API_KEY": "sk_revoked_0123456789"}, "the MIXPEEK_API_KEY variable"),
    ],
)
def test_a_revoked_key_fails_the_check_naming_where_it_came_from(
    resource: Make,
    emulator: EmulatorHandle,
    tmp_path: Path,
    settings: dict[str, str],
    env: dict[str, str],
    source: str,
) -> None:
    site = resource("AppDeploy", "site", config=config(emulator, settings, env))
    with pytest.raises(ConfigError) as info:
        site.check(app_id="app_x", bundle=bundle(tmp_path))
    message = str(info.value)
    assert message.startswith(
        f"The Mixpeek API key from {source} was refused by {emulator.url} (Mixpeek API "
        "answered GET /v1/apps with HTTP 401"
    )
    assert message.endswith(
        "set a valid key with `pulumi config set --secret mixpeek:apiKey <key>` (or "
        "MIXPEEK_API_KEY), or set `mixpeek:skipCredentialsValidation` to true to preview "
        "without asking the service."
    )
    assert "sk_revoked_0123456789" not in message


def test_the_key_is_checked_once_per_process_and_never_when_turned_off(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    folder = bundle(tmp_path)
    good = config(emulator, {"mixpeek:apiKey": emulator.api_key})
    for name in ("one", "two", "three"):
        resource("AppDeploy", name, config=good).check(app_id="app_x", bundle=folder)
    assert emulator.count("GET", "/v1/apps") == 1

    off = config(
        emulator,
        {"mixpeek:apiKey": "sk_revoked_0123456789", "mixpeek:skipCredentialsValidation": "true"},
    )
    resource("AppDeploy", "offline", config=off).check(app_id="app_x", bundle=folder)
    assert emulator.count("GET", "/v1/apps") == 1
