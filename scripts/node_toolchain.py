"""The Node.js side of the native provider's tests (`make node`): `@pulumi/pulumi` and TypeScript
from the npm registry into .venv/node, and the generated TypeScript SDK built against them.

`npm ci` runs from tools/nodejs's lock file, once per lock: a stamp in .venv/node records which.
`build_sdk` compiles sdk/nodejs the way a provider's release does (tsc, then package.json beside
the output) into a `node_modules` folder a program can resolve `@mixpeek/pulumi` from.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tools" / "nodejs"
HOME = ROOT / ".venv" / "node"
SDK = ROOT / "sdk" / "nodejs"


def say(text: str) -> None:
    print(f"[node] {text}", file=sys.stderr, flush=True)


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()


def modules() -> Path | None:
    """.venv/node/node_modules when installed from the current lock file, else None."""
    stamp = HOME / ".installed"
    if stamp.exists() and stamp.read_text() == _lock_digest():
        return HOME / "node_modules"
    return None


def ensure() -> tuple[Path | None, str]:
    """The installed node_modules, or None and the sentence saying why there is none."""
    found = modules()
    if found is not None:
        return found, ""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None, "Node.js and npm are not installed, so the TypeScript example cannot run."
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SOURCE / name, HOME / name)
    say("installing @pulumi/pulumi and TypeScript from the npm registry into .venv/node")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HOME,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"npm ci of tools/nodejs failed: {last[0]}"
    (HOME / ".installed").write_text(_lock_digest())
    return HOME / "node_modules", ""


def tsc(node_modules: Path, project: Path) -> None:
    """Compile a TypeScript project; raises RuntimeError with the compiler's first error."""
    done = subprocess.run(
        [str(node_modules / ".bin" / "tsc"), "-p", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tsc -p {project} failed: {done.stdout.strip()[:2000]}")


def build_sdk(node_modules: Path, into: Path) -> Path:
    """sdk/nodejs compiled as a provider's release does it, into a ``node_modules`` folder
    under ``into`` that also links every toolchain package (one `@pulumi/pulumi` for the
    program and the SDK); returns that folder."""
    source = into / "mixpeek-sdk"
    shutil.copytree(SDK, source)
    (source / "node_modules").symlink_to(node_modules, target_is_directory=True)
    tsc(node_modules, source)
    linked = into / "node_modules"
    linked.mkdir()
    for entry in node_modules.iterdir():
        (linked / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    package = linked / "@mixpeek" / "pulumi"
    shutil.copytree(source / "bin", package)
    shutil.copyfile(SDK / "package.json", package / "package.json")
    return linked


def main() -> int:
    found, why = ensure()
    if found is None:
        say(why)
        return 0  # the tests say it again, and fail where npm was there to use
    say(f"using {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
