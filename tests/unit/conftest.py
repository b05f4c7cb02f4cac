"""The unit tier calls providers' ``check`` with no service behind them: the API key check
the front doors make there is turned off, as ``mixpeek:skipCredentialsValidation`` does."""

from __future__ import annotations

import pytest

from mixpeek_pulumi.config import ENV_SKIP_CHECK


@pytest.fixture(autouse=True)
def _no_key_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SKIP_CHECK, "1")
