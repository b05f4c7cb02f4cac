"""docs/ pages read off the schema are what `make docs` generates, and their examples are
programs: the Python ones compile, the Go ones (resources' and functions') build against
sdk/go."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mixpeek_pulumi.native.schema import schema as read_schema
from scripts import gen_docs
from scripts.pulumi_cli import ROOT


def test_generated_pages_are_up_to_date() -> None:
    assert gen_docs.main(["--check"]) == 0, "docs/ is stale: run `make docs`"


@pytest.mark.parametrize("kind", sorted(gen_docs.EXAMPLES))
def test_python_examples_compile(kind: str) -> None:
    _, decls, outputs = gen_docs.EXAMPLES[kind]
    compile(gen_docs.python_example(decls, outputs), f"{kind}.py", "exec")


@pytest.mark.timeout(900)  # a cold Go build cache compiles the Pulumi Go SDK first
def test_go_examples_build_against_the_sdk(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed")
    module = tmp_path / "examples"
    for kind, (_, decls, outputs) in gen_docs.EXAMPLES.items():
        (module / kind).mkdir(parents=True)
        (module / kind / "main.go").write_text(gen_docs.go_example(decls, outputs) + "\n")
    for token, spec in read_schema().get("functions", {}).items():
        name = token.rsplit(":", 1)[-1]
        (module / name).mkdir(parents=True)
        (module / name / "main.go").write_text(gen_docs.function_go_example(name, spec) + "\n")
    go_mod = (ROOT / "examples" / "native-go" / "go.mod").read_text()
    sdk = ROOT / "sdk" / "go"
    (module / "go.mod").write_text(go_mod.replace("=> ../../sdk/go", f"=> {sdk}"))
    shutil.copyfile(ROOT / "examples" / "native-go" / "go.sum", module / "go.sum")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    done = subprocess.run(
        ["go", "vet", "./..."], cwd=module, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
