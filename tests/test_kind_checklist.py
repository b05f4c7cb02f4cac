"""The checklist for adding a resource kind (docs/architecture.md), run: every kind in the
registry has each thing a kind needs, so an omission fails here instead of reaching users."""

from __future__ import annotations

import ast
import importlib
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

import mixpeek_pulumi
from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.native.schema import PACKAGE

ROOT = Path(__file__).resolve().parents[1]

CONFORMANCE = {
    "App": "drive_apps.py",
    "AppDeploy": "drive_apps.py",
    "AppDomain": "drive_apps.py",
    "AppDomainVerification": "drive_apps.py",
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


PROVIDER = Path(mixpeek_pulumi.__file__).parent
OWN_FILES = 4
"""What adding a kind edits by hand in the provider: its module under ``kinds/`` (its models
and its verbs), its line in ``kinds/registry.py``, its dynamic resource under ``resources/``
and its export in ``__init__.py``; everything else reads the registry."""


def kind_files(name: str) -> set[str]:
    return {
        f"kinds/{snake(name)}.py",
        "kinds/registry.py",
        f"resources/{snake(name)}.py",
        "__init__.py",
    }


SHARED = {"kinds/spec.py", "kinds/environments.py", "kinds/verify.py"}
"""The models and app-environment helpers the existing app kinds share; a new kind needs none
of them, and keeps its own models in its own module."""


def code_names(text: str) -> set[str]:
    """What a module names in its code: its identifiers, and its strings that are one word
    (``kind = "App"``). Prose (docstrings, comments, sentences) is no use of a kind: "a Mixpeek
    App" names the product, and a kind called ``App`` must not make every such line a stranger."""
    found: set[str] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME:
            found.add(tok.string)
        elif tok.type == tokenize.STRING:
            # An f-string's literal parts each count as a string of their own.
            node = ast.parse(tok.string, mode="eval").body
            parts = node.values if isinstance(node, ast.JoinedStr) else [node]
            for part in parts:
                word = part.value if isinstance(part, ast.Constant) else None
                if isinstance(word, str) and re.fullmatch(r"\w+", word):
                    found.add(word)
    return found


def test_code_names_are_identifiers_and_one_word_strings_not_prose() -> None:
    text = '"""A Mixpeek App."""\n# App\nkind = "App"\nx = AppResponse\ny = f"an App {x}"\n'
    assert code_names(text) & {"App", "AppResponse", "an"} == {"App", "AppResponse"}
    assert "App" not in code_names('"""A Mixpeek App."""\n# App\ny = "an App"\n')


def test_adding_a_kind_touches_at_most_four_hand_written_files() -> None:
    """Every provider module outside a kind's own files is kind-agnostic: the front doors, the
    schema, the client and the files layer name no kind, so a new kind is its own files only."""
    names = sorted(KINDS)
    for path in sorted(PROVIDER.rglob("*.py")):
        rel = path.relative_to(PROVIDER).as_posix()
        used = code_names(path.read_text())
        named = [n for n in names if n in used]
        if rel in SHARED:
            continue
        strangers = [n for n in named if rel not in kind_files(n)]
        assert not strangers, f"{rel} names {strangers}: adding a kind would have to edit it"
    for name in names:
        assert len(kind_files(name)) == OWN_FILES
        module = importlib.import_module(f"mixpeek_pulumi.kinds.{snake(name)}")
        assert type(KINDS[name]) is getattr(module, name), (
            f"the registry's {name} is not the class in kinds/{snake(name)}.py"
        )


def test_the_checklist_names_no_kind_the_registry_lacks() -> None:
    assert set(CONFORMANCE) == set(KINDS)
