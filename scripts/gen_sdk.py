"""Regenerate the native provider's schema and SDKs under sdk/ (`make sdks`), or check them.

The schema comes from the typed models (`mixpeek_pulumi.native.schema`); the Python, Node.js and
Go SDKs from the generators of `pulumi package gen-sdk` at the pinned Pulumi version, run by
`tools/pulumi-gen-sdk` (gen-sdk itself hands generation to the language hosts, which the Go
module proxy does not serve). The tool is built once into the cache folder the CLI uses.

What the language hosts add around the generators' output is added here: the Python package's
README beside its pyproject (with the licence as the SPDX string setuptools expects, so building
it prints no warnings), and the Go module's go.mod and go.sum (`go mod tidy`).

    python -m scripts.gen_sdk           # write sdk/schema.json, sdk/python, sdk/nodejs, sdk/go
    python -m scripts.gen_sdk --check   # exit 1 and name the files that are stale
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.pulumi_cli import TOOLS, _exclusive, _go_env, _run_with_progress, cache_home

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk"
LANGUAGES = ("python", "nodejs", "go")
PULUMI_GO_SDK = "github.com/pulumi/pulumi/sdk/v3 v3.259.0"  # the pinned CLI's own version
GEN_MODULE = TOOLS / "pulumi-gen-sdk"


def say(text: str) -> None:
    print(f"[sdks] {text}", file=sys.stderr, flush=True)


def tool_path() -> Path:
    """Where the generator for the current sources of tools/pulumi-gen-sdk is cached."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((GEN_MODULE / name).read_bytes())
    return cache_home() / f"pulumi-gen-sdk-{digest.hexdigest()[:10]}" / "pulumi-gen-sdk"


def ensure_tool() -> Path:
    """The generator, built with Go on first use. Raises RuntimeError when there is no Go."""
    tool = tool_path()
    if tool.exists():
        return tool
    if shutil.which("go") is None:
        raise RuntimeError("Go is not installed, so tools/pulumi-gen-sdk cannot be built")
    with _exclusive():
        if not tool.exists():
            staging = tool.parent.with_name(tool.parent.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            say("building tools/pulumi-gen-sdk (Pulumi's SDK generators) from Go modules")
            command = ["go", "build", "-trimpath", "-ldflags", "-s -w", "-v", "-o", f"{staging}/"]
            _run_with_progress([*command, "."], GEN_MODULE, "pulumi-gen-sdk build")
            shutil.rmtree(tool.parent, ignore_errors=True)
            staging.rename(tool.parent)
    return tool


def generate(into: Path) -> None:
    """sdk/'s whole content, freshly generated, under ``into``."""
    from mixpeek_pulumi.native.schema import schema_json

    into.mkdir(parents=True, exist_ok=True)
    schema = into / "schema.json"
    schema.write_text(schema_json())
    subprocess.run(
        [str(ensure_tool()), str(schema), str(into), *LANGUAGES],
        env=_go_env(),
        check=True,
    )
    _finish_python(into / "python")
    _finish_go(into / "go")


def _finish_python(folder: Path) -> None:
    """The README pyproject names, and the licence as an SPDX string (setuptools >= 77)."""
    shutil.copyfile(folder / "pulumi_mixpeek" / "README.md", folder / "README.md")
    pyproject = folder / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace('  [project.license]\n    text = "Apache-2.0"\n', "")
    text = text.replace("  keywords = ", '  license = "Apache-2.0"\n  keywords = ', 1)
    text = text.replace('requires = ["setuptools>=61.0"]', 'requires = ["setuptools>=77"]')
    pyproject.write_text(text)


def _finish_go(folder: Path) -> None:
    """go.mod for the module one folder above the package, and go.sum from `go mod tidy`
    (starting from the committed one, so a check needs no download once the cache has it)."""
    from mixpeek_pulumi.native.schema import GO_IMPORT

    module = GO_IMPORT.rsplit("/", 1)[0]
    (folder / "go.mod").write_text(f"module {module}\n\ngo 1.25\n\nrequire {PULUMI_GO_SDK}\n")
    if (SDK / "go" / "go.sum").exists():
        shutil.copyfile(SDK / "go" / "go.sum", folder / "go.sum")
    subprocess.run(["go", "mod", "tidy"], cwd=folder, env=_go_env(), check=True)


def stale(fresh: Path) -> list[str]:
    """The files of sdk/ that differ from ``fresh`` (missing, extra or changed)."""
    found: list[str] = []
    for name in ("schema.json", *LANGUAGES):
        found += _compare(fresh / name, SDK / name, name)
    return found


def _compare(fresh: Path, committed: Path, rel: str) -> list[str]:
    if fresh.is_file() or committed.is_file():
        same = fresh.is_file() and committed.is_file() and filecmp.cmp(fresh, committed, False)
        return [] if same else [rel]
    names = {p.name for p in fresh.iterdir()} if fresh.is_dir() else set()
    names |= (
        {p.name for p in committed.iterdir() if not _ignored(p)} if committed.is_dir() else set()
    )
    out: list[str] = []
    for name in sorted(names):
        out += _compare(fresh / name, committed / name, f"{rel}/{name}")
    return out


def _ignored(path: Path) -> bool:
    """What installing or building an SDK leaves beside it (never committed)."""
    ignored = ("node_modules", "bin", "build", "package-lock.json")
    return path.name.endswith(".egg-info") or path.name in ignored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with sdk/, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixpeek-sdk-") as tmp:
        fresh = Path(tmp)
        generate(fresh)
        if args.check:
            diff = stale(fresh)
            for name in diff:
                say(f"sdk/{name} is not what `make sdks` generates from the models")
            return 1 if diff else 0
        SDK.mkdir(exist_ok=True)
        for name in ("schema.json", *LANGUAGES):
            target = SDK / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if (fresh / name).is_dir():
                shutil.copytree(fresh / name, target)
            else:
                shutil.copyfile(fresh / name, target)
    say(f"wrote {SDK.relative_to(ROOT)}/schema.json and the SDKs for {', '.join(LANGUAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
