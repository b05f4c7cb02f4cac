"""The kinds' verbs are typed: mypy --strict, with the project's own settings, refuses a kind's
verbs given another kind's inputs or state, and a state built with a misspelled output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """\
from mixpeek_pulumi.kinds.app_deploy import AppDeploy
from mixpeek_pulumi.kinds.plugin_deployment import PluginDeployment
from mixpeek_pulumi.kinds.spec import AppDeployInputs, AppDeployState, PluginDeploymentInputs
from mixpeek_pulumi.run.context import Context


def right(ctx: Context, inputs: AppDeployInputs) -> AppDeployState:
    return AppDeploy().create(ctx, inputs)


def plugin_inputs_to_the_app_kind(ctx: Context, inputs: PluginDeploymentInputs) -> None:
    AppDeploy().create(ctx, inputs)  # line 12


def app_state_to_the_plugin_kind(ctx: Context, state: AppDeployState) -> None:
    PluginDeployment().delete(ctx, state)  # line 16


def misspelled_output() -> AppDeployState:
    return AppDeployState(app_id="app_1", bundle="dist", deploy_idd="dep_1")  # line 20
"""


@pytest.mark.slow
def test_mypy_refuses_one_kinds_models_handed_to_another_and_misspelled_outputs(
    tmp_path: Path,
) -> None:
    snippet = tmp_path / "seam.py"
    snippet.write_text(SNIPPET)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [12, 16, 20], done.stdout
    text = done.stdout
    assert '"PluginDeploymentInputs"; expected "AppDeployInputs"' in text
    assert '"AppDeployState"; expected "PluginDeploymentState"' in text
    assert 'Unexpected keyword argument "deploy_idd"' in text
