"""Stacks the previous release wrote, run by the current code through the real Pulumi CLI.

Each fixture (``tests/data/upgrade/release-*``, written by ``scripts/make_upgrade_fixture.py``)
holds a dynamic-resource stack and a native-provider stack as one release left them, with the
emulator's data: release 0.1.0 (c8e5ff0), and the last commit before the provider's layers were
redrawn (cf20fc9). A user who upgrades must be able to preview them with no changes, refresh,
update and destroy them. For the dynamic resources that rests on the pickled provider in their
state, ``__provider``, which names our provider classes by module path: moving or renaming one
without leaving the old name importable breaks refresh and destroy of every existing stack.
"""

from __future__ import annotations

import base64
import importlib
import io
import os
import pickletools
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mixpeek_emulator
import mixpeek_pulumi
from mixpeek_emulator.state import Timing
from mixpeek_pulumi.resources._common import MixpeekProvider
from scripts.make_upgrade_fixture import (
    API_KEY,
    APPS,
    FIXTURES,
    NAMESPACES,
    PASSPHRASE,
    STACK,
    problems,
)
from scripts.pulumi_cli import ROOT, Cli
from scripts.pulumi_stack import CliStack
from tests.cli.conftest import NATIVE_PLUGIN
from tests.emulator_fixture import EmulatorHandle, start_emulator

pytestmark = pytest.mark.cli

DEPLOYS = "/v1/apps/*/deploy"
PLUGIN_ID = "text_embed_1_0_0"
OLD_PROVIDERS = {
    "site-staging": ("mixpeek_pulumi.resources.app_deploy", "AppDeployProvider"),
    "site-production": ("mixpeek_pulumi.resources.app_promotion", "AppPromotionProvider"),
    "text-embed": ("mixpeek_pulumi.resources.plugin_deployment", "PluginDeploymentProvider"),
}
"""What release 0.1.0 pickled into ``__provider``: these must stay importable, or be aliased."""
NEW_INDEX = "<!doctype html><h1>Hello after the upgrade</h1><script src='app.js'></script>"


@pytest.fixture(params=FIXTURES, ids=lambda p: p.name)
def fixture_copy(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Path, EmulatorHandle]]:
    """A copy of each fixture, and the emulator serving its data folder on a free port."""
    copy = tmp_path / "fixture"
    shutil.copytree(request.param, copy)
    handle = start_emulator(
        data_dir=copy / "emulator", api_key=API_KEY, timing=Timing(0.05, 0.2, 0.2)
    )
    try:
        yield copy, handle
    finally:
        handle.running.stop()


def current_code() -> str:
    """PYTHONPATH for the CLI's processes (program, provider host, plugin): the packages this
    test imported, whatever the virtualenv's editable install points at."""
    folders = [
        Path(str(m.__file__)).resolve().parents[1] for m in (mixpeek_pulumi, mixpeek_emulator)
    ]
    return os.pathsep.join(
        filter(None, [*map(str, folders), str(ROOT), os.environ.get("PYTHONPATH", "")])
    )


def open_upgraded(cli: Cli, copy: Path, project: str, emulator: EmulatorHandle) -> CliStack:
    """The fixture's stack, with the endpoint and key in the environment, as when it was written:
    stack config would change the provider's configuration and show as a diff of its own."""
    stack = CliStack(
        cli,
        copy / project,
        STACK,
        backend=copy,
        passphrase=PASSPHRASE,
        env={
            "MIXPEEK_BASE_URL": emulator.url,
            "MIXPEEK_API_KEY": API_KEY,
            "MIXPEEK_PULUMI_STATE_DIR": str(copy.parent / "inflight"),
            "PYTHONPATH": current_code(),
        },
    )
    if project == "native":
        stack.install_plugin("resource", "mixpeek", mixpeek_pulumi.__version__, NATIVE_PLUGIN)
    return stack


def pickled_class(provider: str) -> tuple[str, str]:
    """The module and class a ``__provider`` pickle refers to, read without unpickling it."""
    strings = [
        str(arg)
        for op, arg, _ in pickletools.genops(base64.b64decode(provider))
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE")
    ]
    return strings[0], strings[1]


def served_index(emulator: EmulatorHandle, app_id: str, environment: str) -> str:
    """The index.html of the version an environment serves, downloaded through the API."""
    version = emulator.served_version(app_id, environment)
    with emulator.api() as api:
        answer = api.get(f"/v1/apps/{app_id}/versions/{version}/download")
        answer.raise_for_status()
    archive = httpx.get(answer.json()["download_url"], timeout=30)
    archive.raise_for_status()
    return zipfile.ZipFile(io.BytesIO(archive.content)).read("index.html").decode()


def test_fixtures_are_small_and_hold_no_secret() -> None:
    assert [p.name for p in FIXTURES] == ["release-0.1.0-c8e5ff0", "release-0.1.0-cf20fc9"]
    for fixture in FIXTURES:
        assert problems(fixture) == [], fixture.name


def test_dynamic_state_names_the_old_provider_classes(cli: Cli, fixture_copy) -> None:
    """What the old state stores, which a refactor must keep working: provider classes by
    module path, and bundle and plugin paths made absolute where the fixture was written."""
    copy, emulator = fixture_copy
    resources = open_upgraded(cli, copy, "dynamic", emulator).resources()

    assert {name: pickled_class(r["inputs"]["__provider"]) for name, r in resources.items()} == (
        OLD_PROVIDERS
    )
    # The quick reading of what the stack tests below find the slow way: each name still
    # leads to a provider class of the current code.
    for module, name in OLD_PROVIDERS.values():
        found = getattr(importlib.import_module(module), name, None)
        assert isinstance(found, type) and issubclass(found, MixpeekProvider), (
            f"{module}.{name} is pickled in existing stacks: keep it importable (an alias will do)"
        )
    bundle = Path(resources["site-staging"]["inputs"]["bundle"])
    source = Path(resources["text-embed"]["inputs"]["source"])
    assert bundle.is_absolute() and source.is_absolute()
    # Written elsewhere: every test below runs a project that has moved since.
    assert not bundle.is_relative_to(copy)


@pytest.mark.parametrize("project", ["dynamic", "native"])
def test_old_stack_previews_refreshes_updates_and_destroys(
    project: str, cli: Cli, fixture_copy
) -> None:
    copy, emulator = fixture_copy
    app_id = APPS[project]
    stack = open_upgraded(cli, copy, project, emulator)

    preview = stack.preview(expect_no_changes=True)
    assert preview.ok, preview.output
    # Refresh reads every resource through the provider the state names (for the dynamic
    # ones, the old pickle); the program then still has nothing to do.
    refreshed = stack.refresh()
    assert refreshed.ok, refreshed.output
    again = stack.preview(expect_no_changes=True)
    assert again.ok, again.output

    deploys = emulator.count("POST", DEPLOYS)
    (copy / project / "site" / "index.html").write_text(NEW_INDEX)
    up = stack.up()
    assert up.ok, up.output
    # The stack and the plugin stay; the site deploys anew and production is promoted to it.
    assert up.summary == {"same": 2, "update": 2}, up.output
    assert emulator.count("POST", DEPLOYS) == deploys + 1
    assert emulator.served_version(app_id, "staging") == 2
    assert emulator.served_version(app_id, "production") == 2
    assert served_index(emulator, app_id, "staging") == NEW_INDEX
    assert served_index(emulator, app_id, "production") == NEW_INDEX

    destroyed = stack.destroy()
    assert destroyed.ok, destroyed.output
    assert destroyed.summary == {"delete": 4}
    assert stack.resources() == {}
    assert emulator.records().plugins[NAMESPACES[project]][PLUGIN_ID].undeployed
    assert emulator.served_version(app_id, "production") == 2  # on_delete "retain"


def test_old_dynamic_stack_destroys_as_it_was_left(cli: Cli, fixture_copy) -> None:
    """A destroy straight from the old state: after an `up`, the state holds the pickles the
    current code wrote, so only this run deletes through the old release's ``__provider``.
    (The native stack's state is plain properties, which the test above destroys.)"""
    copy, emulator = fixture_copy
    stack = open_upgraded(cli, copy, "dynamic", emulator)

    destroyed = stack.destroy()

    assert destroyed.ok, destroyed.output
    assert destroyed.summary == {"delete": 4}
    assert stack.resources() == {}
    assert emulator.records().plugins[NAMESPACES["dynamic"]][PLUGIN_ID].undeployed
    assert emulator.count("POST", DEPLOYS) == 0
