"""Configuration lookup order and the sentences errors start with."""

from __future__ import annotations

import pytest

from mixpeek_pulumi.config import DEFAULT_BASE_URL, ProviderConfig
from mixpeek_pulumi.errors import ConfigError, DeployFailedError, redact, register_secret


def test_stack_config_wins_over_environment() -> None:
    cfg = ProviderConfig.resolve(
        {"mixpeek:apiKey": "sk_from_config_123", "mixpeek:baseUrl": "https://ded.example/v1/"}.get,
        env={"MIXPEEK_API_KEY": "sk_from_env_456", "MIXPEEK_BASE_URL": "https://env.example"},
    )
    assert cfg.api_key == "sk_from_config_123"
    assert cfg.base_url == "https://ded.example"
    assert "sk_from_config_123" not in repr(cfg)


def test_environment_then_default() -> None:
    cfg = ProviderConfig.resolve(None, env={"MIXPEEK_API_KEY": "sk_env_only_789"})
    assert cfg.api_key == "sk_env_only_789"
    assert cfg.base_url == DEFAULT_BASE_URL


def test_missing_key_names_both_places() -> None:
    with pytest.raises(ConfigError) as info:
        ProviderConfig.resolve(None, env={}).require_key()
    text = str(info.value)
    assert "pulumi config set mixpeek:apiKey --secret" in text
    assert "MIXPEEK_API_KEY" in text
    assert len(text.splitlines()) == 1


def test_bad_base_url_is_a_sentence_naming_where_it_was_set() -> None:
    cfg = ProviderConfig.resolve({"mixpeek:baseUrl": "api.mixpeek.com"}.get, env={})
    with pytest.raises(ConfigError, match="from `mixpeek:baseUrl` cannot be used: it is not an"):
        _ = cfg.base_url
    cfg = ProviderConfig.resolve(None, env={"MIXPEEK_BASE_URL": "api.mixpeek.com"})
    with pytest.raises(ConfigError, match="from the MIXPEEK_BASE_URL variable cannot be used"):
        _ = cfg.base_url


def test_a_bad_environment_setting_never_matters_when_stack_config_sets_it() -> None:
    cfg = ProviderConfig.resolve(
        {"mixpeek:baseUrl": "https://ded.example"}.get,
        env={"MIXPEEK_BASE_URL": "api.mixpeek.com", "MIXPEEK_HTTP_READ_TIMEOUT": "90s"},
    )
    assert cfg.base_url == "https://ded.example"
    with pytest.raises(ConfigError, match="MIXPEEK_HTTP_READ_TIMEOUT must be a number"):
        _ = cfg.read_timeout


def test_registered_secrets_and_credential_shapes_are_redacted() -> None:
    register_secret("plainsecretvalue")
    text = redact(
        "key plainsecretvalue, Authorization: Bearer abc.def sk_live_abcdef123456 token=xyz"
    )
    for leaked in ("plainsecretvalue", "abc.def", "sk_live_abcdef123456", "xyz"):
        assert leaked not in text


def test_deploy_failure_headline_then_redacted_tail() -> None:
    register_secret("sk_tail_secret_999")
    err = DeployFailedError(
        "AppDeploy 'site': deploy dep_1 ended failed: no index.html",
        resource="site",
        deploy_id="dep_1",
        status="failed",
        reason="no index.html",
        log_tail=["extracting", "env MIXPEEK_API_KEY=sk_tail_secret_999"],
    )
    lines = str(err).splitlines()
    assert lines[0] == "AppDeploy 'site': deploy dep_1 ended failed: no index.html."
    assert "sk_tail_secret_999" not in str(err)
    assert lines[-1].strip().startswith("|")


def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    cfg = ProviderConfig.resolve({"mixpeek:apiKey": "sk_live_ключ_123456"}.get, env={})
    with pytest.raises(ConfigError) as info:
        cfg.require_key()
    assert "ключ" not in str(info.value) and "sk_live" not in str(info.value)
    assert "outside ASCII" in str(info.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://admin:hunter2@api.example", "put the API key in `mixpeek:apiKey`"),
        ("ftp://api.example", "not an http(s) URL"),
        ("https://api.example?key=1", "query string"),
    ],
)
def test_base_urls_are_refused_in_one_sentence_without_credentials(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        _ = ProviderConfig.resolve({"mixpeek:baseUrl": url}.get, env={}).base_url
    assert says in str(info.value)
    assert "hunter2" not in str(info.value)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "lots", "99999"])
def test_the_read_timeout_setting_is_checked(value: str) -> None:
    with pytest.raises(ConfigError, match="MIXPEEK_HTTP_READ_TIMEOUT must be a number of seconds"):
        _ = ProviderConfig.resolve(None, env={"MIXPEEK_HTTP_READ_TIMEOUT": value}).read_timeout


def test_url_credentials_are_redacted_whatever_the_key_looks_like() -> None:
    register_secret("plain-looking-key-without-prefix")
    text = redact("http://bob:pw@h/x and plain-looking-key-without-prefix")
    assert "pw" not in text and "plain-looking-key" not in text
