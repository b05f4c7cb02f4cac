"""The native provider's schema, the typed models, the dynamic resources and the committed SDKs
say the same thing: one set of inputs and outputs behind both front doors."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixpeek_pulumi import (
    App,
    AppArgs,
    AppDeploy,
    AppDeployArgs,
    AppDomain,
    AppDomainArgs,
    AppDomainVerification,
    AppDomainVerificationArgs,
    AppPromotion,
    AppPromotionArgs,
    PluginDeployment,
    PluginDeploymentArgs,
)
from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.native.schema import schema, schema_json, snake
from scripts import gen_sdk
from tests.engine import PROJECT_ROOT

DYNAMIC = {
    "App": (App, AppArgs),
    "AppDeploy": (AppDeploy, AppDeployArgs),
    "AppDomain": (AppDomain, AppDomainArgs),
    "AppDomainVerification": (AppDomainVerification, AppDomainVerificationArgs),
    "AppPromotion": (AppPromotion, AppPromotionArgs),
    "PluginDeployment": (PluginDeployment, PluginDeploymentArgs),
}


def test_committed_schema_is_the_one_the_models_give() -> None:
    committed = (PROJECT_ROOT / "sdk" / "schema.json").read_text()
    assert committed == schema_json(), "sdk/schema.json is stale: run `make sdks`"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_models_and_dynamic_resources_agree(kind: str) -> None:
    spec = schema()["resources"][f"mixpeek:index:{kind}"]
    steps = KINDS[kind]
    resource, args = DYNAMIC[kind]
    inputs = {snake(p) for p in spec["inputProperties"]}
    outputs = {snake(p) for p in spec["properties"]}

    # What a program sets: the same names in the schema and in the dynamic resource's Args.
    assert inputs == {f.name for f in dataclasses.fields(args)}
    # Required inputs are the models' required fields.
    required = {n for n, f in steps.inputs.model_fields.items() if f.is_required()}
    assert {snake(p) for p in spec["requiredInputs"]} == required
    # Every state field is an output of the native resource; the dynamic resource declares
    # each one it adds to the inputs.
    assert outputs == set(steps.state.model_fields) - {"resource_name"}
    assert set(steps.state.output_keys()) <= set(resource.__annotations__)
    assert outputs - inputs == set(steps.state.output_keys()) - inputs
    # Outputs a create always sets are typed as never absent.
    assert {snake(p) for p in spec["required"]} >= set(steps.state.guaranteed)
    assert set(steps.state.guaranteed) <= outputs
    # The API key is a secret wherever it can be set.
    whole = schema()
    assert whole["config"]["variables"]["apiKey"]["secret"] is True
    assert whole["provider"]["inputProperties"]["apiKey"]["secret"] is True


def test_the_properties_a_kind_keeps_secret_are_secret_in_the_schema() -> None:
    """``auth_config.password`` and ``build_config.secrets`` are secret in the schema, where
    the SDKs and the docs read them; nothing else of App is."""
    types = schema()["types"]
    secret = {
        f"{name.rsplit(':', 1)[-1]}.{prop}"
        for name, spec in types.items()
        for prop, field in spec["properties"].items()
        if field.get("secret")
    }
    assert secret == {"AuthConfig.password", "AppBuildConfig.secrets"}
    assert "mixpeek:index:ApiAllow" in types  # an object inside a list inside an object


def test_plugin_prints_the_schema_it_serves() -> None:
    plugin = Path(sys.executable).parent / "pulumi-resource-mixpeek"
    done = subprocess.run([plugin, "--schema"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == schema()


def test_committed_sdks_are_what_the_generators_make_of_the_schema(tmp_path: Path) -> None:
    """Regenerates the Python and Node.js SDKs with Pulumi's own generators (built with Go)
    and compares them, file by file, with sdk/."""
    if shutil.which("go") is None and not gen_sdk.tool_path().exists():
        pytest.skip("no Go to build tools/pulumi-gen-sdk")
    gen_sdk.generate(tmp_path)
    assert gen_sdk.stale(tmp_path) == [], "sdk/ is stale: run `make sdks`"
