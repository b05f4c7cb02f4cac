"""Find or get the real Pulumi CLI, the one command `make pulumi`, `make demo` and `make test` share.

In this order: a `pulumi` on PATH (a recent 3.x); a CLI this script got earlier (kept in a cache
folder outside the clone, so fresh clones on the same machine reuse it); Pulumi's official
installer, with a short network timeout; a pinned build from Go modules (`tools/pulumi-cli`, and
the YAML language host from `tools/pulumi-language-yaml`) when `go` is present. Otherwise it says
in one sentence why there is no CLI.

Standard library only: it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
PULUMI_VERSION = "3.259.0"
MIN_VERSION = (3, 139, 0)  # ResourceProvider.configure, which the provider relies on
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
YAML_PACKAGE = "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
# The shims the CLI runs from beside its own binary, as they sit in the sdk/v3 module.
SHIMS = (
    "python/dist/pulumi-resource-pulumi-python",
    "python/cmd/pulumi-language-python-exec",
)
INSTALLER_URL = "https://get.pulumi.com"
ENV_CACHE = "MIXPEEK_PULUMI_CACHE"


@dataclass(frozen=True)
class Cli:
    """A usable Pulumi CLI: the folder holding `pulumi` and the plugins bundled beside it."""

    bin_dir: Path
    version: str
    source: str

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"

    def has(self, plugin: str) -> bool:
        """Whether a bundled plugin (a language host, a shim) sits beside the CLI or on PATH."""
        return (self.bin_dir / plugin).exists() or shutil.which(plugin) is not None

    @property
    def root(self) -> Path:
        """What `pulumi.automation.PulumiCommand(root=...)` expects: the folder above bin/."""
        return self.bin_dir.parent


def say(text: str) -> None:
    print(f"[pulumi-cli] {text}", file=sys.stderr, flush=True)


def cache_home() -> Path:
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi"


def build_key() -> str:
    """The pinned version plus a digest of the Go modules that build it: a change rebuilds."""
    digest = hashlib.sha256()
    for module in ("pulumi-cli", "pulumi-language-yaml"):
        for name in ("go.mod", "go.sum"):
            path = TOOLS / module / name
            digest.update(path.read_bytes() if path.exists() else b"")
    return f"pulumi-v{PULUMI_VERSION}-{digest.hexdigest()[:10]}"


def built_dir() -> Path:
    return cache_home() / build_key() / "bin"


def installed_dir() -> Path:
    return cache_home() / f"pulumi-v{PULUMI_VERSION}-official" / "bin"


def version_of(pulumi: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(pulumi), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip().lstrip("v")
    return text if done.returncode == 0 and text else None


def recent(version: str) -> bool:
    parts = version.split("-")[0].split(".")
    try:
        numbers = tuple(int(p) for p in parts[:3])
    except ValueError:
        return False
    return numbers[0] == 3 and numbers >= MIN_VERSION


def locate() -> Cli | None:
    """A CLI that is already here: on PATH first, then one this script got earlier."""
    on_path = shutil.which("pulumi")
    if on_path:
        resolved = Path(on_path).resolve()
        version = version_of(resolved)
        if version and recent(version):
            return Cli(resolved.parent, version, "PATH")
    for folder, source in ((built_dir(), "built from Go modules"), (installed_dir(), "installer")):
        if (folder / "pulumi").exists():
            version = version_of(folder / "pulumi")
            if version:
                return Cli(folder, version, source)
    return None


def install_official() -> Cli | None:
    """Pulumi's official installer, given a few seconds to reach the internet."""
    curl = shutil.which("curl")
    if curl is None:
        say("curl is not installed, so Pulumi's official installer cannot be fetched")
        return None
    target = installed_dir().parent
    with tempfile.TemporaryDirectory(prefix="pulumi-install-") as tmp:
        script = Path(tmp) / "install.sh"
        say(f"trying Pulumi's official installer ({INSTALLER_URL}, 5 s to connect)")
        download = [curl, "-fsSL", "--connect-timeout", "5", "--max-time", "30"]
        fetched = subprocess.run(
            [*download, "-o", str(script), INSTALLER_URL],
            capture_output=True,
            check=False,
        )
        if fetched.returncode != 0:
            say(f"the installer could not be downloaded (curl exit code {fetched.returncode})")
            return None
        options = ["--version", PULUMI_VERSION, "--install-root", str(target), "--no-edit-path"]
        done = subprocess.run(
            ["sh", str(script), *options],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if done.returncode != 0 or not (target / "bin" / "pulumi").exists():
        say(f"the installer failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        return None
    return Cli(target / "bin", version_of(target / "bin" / "pulumi") or PULUMI_VERSION, "installer")


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}


def _run_with_progress(command: list[str], cwd: Path, what: str) -> None:
    """Run a quiet Go command, saying every 20 s how far it got (packages built so far)."""
    started = time.monotonic()
    count = 0
    tail: list[str] = []
    # The context closes the pipe: a Popen left to the garbage collector warns of an unclosed
    # file in whichever test happens to run then.
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=_go_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:

        def report() -> None:
            while proc.poll() is None:
                time.sleep(20)
                if proc.poll() is None:
                    elapsed = time.monotonic() - started
                    say(f"{what}: {count} packages so far, {elapsed:.0f} s")

        threading.Thread(target=report, daemon=True).start()
        assert proc.stdout is not None
        for line in proc.stdout:
            count += 1
            tail = [*tail[-19:], line.rstrip()]
        returncode = proc.wait()
    if returncode != 0:
        for line in tail:
            say(f"  {line}")
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise RuntimeError(f"{what} exited with code {returncode}: {last.strip()}")


def _module_dir(module: str, cwd: Path) -> Path:
    done = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", module],
        cwd=cwd,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip())


def build_with_go() -> Cli:
    """Build the pinned CLI, the YAML language host and the shims into the cache folder.

    Raises RuntimeError with Go's own error when a step fails.
    """
    target = built_dir()
    staging = target.with_name(f"bin.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ldflags = (
        f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}"
    )
    flags = ["-trimpath", "-tags", "osusergo,grpcnotrace", "-ldflags", ldflags, "-v"]
    cli_module = TOOLS / "pulumi-cli"
    yaml_module = TOOLS / "pulumi-language-yaml"
    started = time.monotonic()
    try:
        say(f"building Pulumi CLI v{PULUMI_VERSION} from Go modules into {target}")
        say("a cold Go cache downloads a few hundred MB of modules first; the build then")
        say("compiles about 2,000 packages (6 minutes on 2 cores), a warm one only links")
        _run_with_progress(
            ["go", "build", *flags, "-o", f"{staging}/", CLI_PACKAGE], cli_module, "pulumi build"
        )
        sdk = _module_dir(SDK_MODULE, cli_module)
        for shim in SHIMS:
            shutil.copyfile(sdk / shim, staging / Path(shim).name)
            (staging / Path(shim).name).chmod(0o755)
        say("building the YAML language host (pulumi-language-yaml)")
        yaml_flags = ["-trimpath", "-ldflags", "-s -w", "-v"]
        _run_with_progress(
            ["go", "build", *yaml_flags, "-o", f"{staging}/", YAML_PACKAGE],
            yaml_module,
            "pulumi-language-yaml build",
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # only a complete build is ever found by locate()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"built in {time.monotonic() - started:.0f} s")
    return Cli(target, version_of(target / "pulumi") or PULUMI_VERSION, "built from Go modules")


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One getter at a time per machine: `make demo` and `make test` may start together."""
    home = cache_home()
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure() -> tuple[Cli | None, str]:
    """A CLI, got by the first way that works, or None and the sentence saying why not."""
    found = locate()
    if found is not None:
        return found, ""
    with _exclusive():
        found = locate()  # another process may have finished while this one waited
        if found is not None:
            return found, ""
        installed = install_official()
        if installed is not None:
            return installed, ""
        if shutil.which("go") is None:
            return None, (
                "There is no Pulumi CLI: none is on PATH, Pulumi's official installer could not "
                "be downloaded, and Go is not installed to build one from Go modules."
            )
        try:
            return build_with_go(), ""
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            first = str(exc).splitlines()[0]
            return None, f"There is no Pulumi CLI: building it from Go modules failed ({first})."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--locate", action="store_true", help="only report a CLI already here; get nothing"
    )
    args = parser.parse_args(argv)
    if args.locate:
        cli, why = locate(), "No Pulumi CLI is on PATH or in the cache."
    else:
        cli, why = ensure()
    if cli is None:
        say(why)
        return 0 if not args.locate else 1
    say(f"using Pulumi CLI {cli.version} at {cli.pulumi} ({cli.source})")
    print(cli.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
