"""What the program side sees: type tokens, the pickled provider, previews without network."""

from __future__ import annotations

import base64
from pathlib import Path

import dill
import pulumi
import pytest

import mixpeek_pulumi
from mixpeek_pulumi import (
    App,
    AppDeploy,
    AppDomain,
    AppDomainVerification,
    AppPromotion,
    PluginDeployment,
)
from mixpeek_pulumi.kinds.app import AppState
from mixpeek_pulumi.kinds.app_domain import AppDomainState
from mixpeek_pulumi.kinds.app_domain_verification import AppDomainVerificationState
from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.kinds.spec import AppDeployState, AppPromotionState, PluginDeploymentState
from mixpeek_pulumi.resources.app_deploy import AppDeployProvider
from tests.engine import Stack, run_program, strip_secrets
from tests.sites import plugin, site, write_tree


def test_provider_pickles_by_reference_without_config(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("pickle-site")
    bundle = write_tree(tmp_path / "dist", site())
    run_program(stack.engine, lambda: AppDeploy("site", app_id=app_id, bundle=str(bundle)) and None)
    state = stack.engine.find("site")
    assert state.type == "pulumi-python:dynamic/mixpeek:AppDeploy"
    pickled = strip_secrets(state.outputs["__provider"])
    raw = base64.b64decode(pickled)
    assert b"mixpeek_pulumi.resources.app_deploy" in raw
    assert stack.emulator.api_key.encode() not in raw
    assert isinstance(dill.loads(raw), AppDeployProvider)


def test_preview_of_a_new_resource_only_checks_the_key(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("preview-site")
    bundle = write_tree(tmp_path / "dist", site())

    def program() -> None:
        d = AppDeploy("site", app_id=app_id, bundle=str(bundle))
        pulumi.export("url", d.url)

    before = len(stack.emulator.requests())
    result = run_program(stack.engine, program, preview=True)
    assert result.steps == [("create", "site")]
    # One cheap authenticated read, so a dead key fails here; nothing else is asked or sent.
    assert [(r["method"], r["path"]) for r in stack.emulator.requests()[before:]] == [
        ("GET", "/v1/apps")
    ]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_declared_outputs_are_the_state_models(kind: str) -> None:
    """Output keys come from the state model; the class annotations name each one (and only
    state fields), so what the program sees cannot drift from what the provider returns."""
    resource, state = getattr(mixpeek_pulumi, kind), KINDS[kind].state
    annotated = set(resource.__annotations__)
    assert set(state.output_keys()) <= annotated, set(state.output_keys()) - annotated
    assert annotated <= set(state.model_fields), annotated - set(state.model_fields)


def test_every_guaranteed_output_is_set_after_create(stack: Stack, tmp_path: Path) -> None:
    """What the schema types as never absent (``State.guaranteed``) is set by a real create of
    each resource, so `staging.version` can feed a promotion in a typed SDK."""
    app_id = stack.emulator.create_app("guaranteed-site")
    bundle = write_tree(tmp_path / "dist", site())
    source = write_tree(tmp_path / "plugin", plugin())

    def program() -> None:
        staging = AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging")
        promoted = AppPromotion(
            "prod", app_id=app_id, version=staging.version, source_deploy_id=staging.deploy_id
        )
        embed = PluginDeployment(
            "embed", namespace_id="ns_g", name="text_embed", version="1.0.0", source=str(source)
        )
        app = App("app", slug="guaranteed-app", meta={"title": "Guaranteed"})
        domain = AppDomain("domain", app_id=app.app_id, domain="guaranteed.example.com")
        verified = AppDomainVerification(
            "verified",
            app_id=app.app_id,
            domain=domain.domain,
            poll_interval_seconds=0.1,
            opts=pulumi.ResourceOptions(depends_on=[domain]),
        )
        for name, resource, state in (
            ("site", staging, AppDeployState),
            ("prod", promoted, AppPromotionState),
            ("embed", embed, PluginDeploymentState),
            ("app", app, AppState),
            ("domain", domain, AppDomainState),
            ("verified", verified, AppDomainVerificationState),
        ):
            for key in state.guaranteed:
                pulumi.export(f"{name}.{key}", getattr(resource, key))

    outputs = run_program(stack.engine, program).outputs
    exercised = {key.partition(".")[0] for key in outputs}
    assert len(exercised) == len(KINDS), "every kind in the registry is created here"
    assert len(outputs) == sum(len(kind.state.guaranteed) for kind in KINDS.values())
    assert {k: v for k, v in outputs.items() if v is None} == {}
