"""Fixtures of the in-process tier: resources of any kind against the test's emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import EmulatorHandle
from tests.kinds.harness import Resource

Make = Callable[..., Resource]


@pytest.fixture
def resource(emulator: EmulatorHandle, tmp_path: Path) -> Make:
    """``resource(kind, name, keeps_partial=True)``: one resource, its journal in the test's
    own folder (shared by every resource of the test, as on one machine)."""

    def make(kind: str, name: str, **options: Any) -> Resource:
        options.setdefault("journal_dir", tmp_path / "journal")
        return Resource(kind, name, emulator, **options)

    return make
