"""The checklist for adding a resource kind (docs/architecture.md), run: every kind in the
registry has each thing a kind needs, so an omission fails here instead of reaching users."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

import mixpeek_pulumi
from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.native.schema import PACKAGE

ROOT = Path(__file__).resolve().parents[1]

CONFORMANCE = {
    "AppDeploy": "drive_apps.py",
    "AppPromotion": "drive_apps.py",
    "PluginDeployment": "drive_plugins.py",
}
"""The official SDK's workflow that covers the endpoints each kind calls."""


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read(*parts: str) -> str:
    return (ROOT.joinpath(*parts)).read_text()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_its_dynamic_resource_args_and_pickled_provider(name: str) -> None:
    assert hasattr(mixpeek_pulumi, name), f"mixpeek_pulumi does not export {name}"
    assert hasattr(mixpeek_pulumi, f"{name}Args"), f"mixpeek_pulumi does not export {name}Args"
    module = importlib.import_module(f"mixpeek_pulumi.resources.{snake(name)}")
    provider = getattr(module, f"{name}Provider")
    assert provider.kind == name


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_is_in_the_schema_and_the_generated_sdks(name: str) -> None:
    schema = json.loads(read("sdk", "schema.json"))
    assert f"{PACKAGE}:index:{name}" in schema["resources"], "run make sdks"
    assert (ROOT / "sdk" / "python" / "pulumi_mixpeek" / f"{snake(name)}.py").exists()
    camel = f"{name[0].lower()}{name[1:]}"
    assert (ROOT / "sdk" / "nodejs" / f"{camel}.ts").exists()
    assert (ROOT / "sdk" / "go" / "mixpeek" / f"{camel}.go").exists()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_examples_in_both_front_doors(name: str) -> None:
    programs = [p.read_text() for p in (ROOT / "examples").glob("*/__main__.py")]
    assert any(re.search(rf"\b{name}\(", text) for text in programs), (
        f"no Python example under examples/ declares {name}"
    )
    yaml = [p.read_text() for p in (ROOT / "examples").glob("native-*/Pulumi.yaml")]
    assert any(f"type: {PACKAGE}:index:{name}" in text for text in yaml), (
        f"no native example under examples/ declares {PACKAGE}:index:{name}"
    )


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_its_conformance_workflow(name: str) -> None:
    assert name in CONFORMANCE, f"name the official SDK workflow that covers {name}"
    driver = CONFORMANCE[name]
    assert (ROOT / "tests" / "conformance" / driver).exists()
    assert f'"{driver}"' in read("tests", "conformance", "test_official_sdks.py")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_fault_matrix_rows_and_hostile_input_cases(name: str) -> None:
    reliability = read("docs", "reliability.md")
    assert f"| {name} |" in reliability, f"the fault matrix has no row for {name}"
    hostile = read("tests", "reliability", "test_hostile_inputs.py")
    assert re.search(rf"\b{name}\(", hostile), f"no hostile-input case declares {name}"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_is_documented(name: str) -> None:
    readme = read("README.md")
    assert f"### {name}\n" in readme, f"README.md has no section for {name}"
    assert (ROOT / "docs" / "resources" / f"{snake(name)}.md").exists(), "run make docs"
    assert f"`{name}`" in read("docs", "architecture.md")


def test_the_checklist_names_no_kind_the_registry_lacks() -> None:
    assert set(CONFORMANCE) == set(KINDS)
