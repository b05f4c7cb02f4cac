"""`make dist`: every release artifact of this version, under dist/.

- the `mixpeek-pulumi` wheel and sdist (`python -m build`);
- the generated Python SDK's wheel, `pulumi_mixpeek` (from sdk/python);
- the generated Node.js SDK's npm tarball, `@mixpeek/pulumi` (sdk/nodejs compiled with tsc, as
  a provider's release does, then `npm pack`), named `mixpeek-pulumi-nodejs-<version>.tgz`:
  `npm pack` would call it `mixpeek-pulumi-<version>.tgz`, one character from the sdist's
  `mixpeek_pulumi-<version>.tar.gz` beside it;
- the plugin release archive `pulumi-resource-mixpeek-v<version>-<os>-<arch>.tar.gz` for the
  platform this runs on: the provider frozen by PyInstaller into one folder (the executable at
  its top, its libraries in `_internal/`), so the machine that runs it needs no Python and none
  of our virtualenvs, and nothing is unpacked when it starts. Another platform's archive comes
  from this same command run on that platform (see docs/release.md); none is cross-built.

The plugin build is slow (about a minute), so it is cached outside the clone, in the folder the
Pulumi CLI is cached in, keyed by a digest of everything that goes into it: the CLI tests and
`make dist` share one build.

    python -m scripts.dist            # everything into dist/
    python -m scripts.dist --plugin   # only the plugin archive; prints its path
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

from scripts import node_toolchain
from scripts.pulumi_cli import ROOT, _exclusive, cache_home

DIST = ROOT / "dist"
PROVIDER = ROOT / "provider"
PLUGIN = "pulumi-resource-mixpeek"
ENTRY = "from mixpeek_pulumi.native.launch import main\n\nmain()\n"
# What the frozen plugin never imports; leaving them out keeps it small and fast to start.
# click, rich and pygments are httpx's command line, which httpx imports when it can.
EXCLUDED = (
    "tkinter",
    "mixpeek_emulator",
    "fastapi",
    "uvicorn",
    "pytest",
    "hypothesis",
    "mypy",
    "click",
    "rich",
    "pygments",
)
# Loaded by name (native/protos.py), so PyInstaller's analysis cannot see them.
HIDDEN = tuple(
    f"pulumi.runtime.proto.{name}"
    for name in ("engine_pb2", "engine_pb2_grpc", "plugin_pb2", "provider_pb2", "provider_pb2_grpc")
)


def say(text: str) -> None:
    print(f"[dist] {text}", file=sys.stderr, flush=True)


def version() -> str:
    from mixpeek_pulumi._version import __version__

    return __version__


def target() -> tuple[str, str]:
    """Pulumi's names for this machine's OS and architecture."""
    system = {"linux": "linux", "darwin": "darwin", "win32": "windows"}[sys.platform]
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[machine]
    return system, arch


def archive_name(ver: str | None = None) -> str:
    system, arch = target()
    return f"{PLUGIN}-v{ver or version()}-{system}-{arch}.tar.gz"


def plugin_key() -> str:
    """A digest of the provider's sources and of what freezes them: a change rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(PROVIDER.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for path in (ROOT / "pyproject.toml", ROOT / "LICENSE", Path(__file__)):
        digest.update(path.read_bytes())
    digest.update(f"{sys.version}|{metadata.version('pyinstaller')}".encode())
    return digest.hexdigest()[:12]


def plugin_archive() -> Path:
    """The release archive for this platform, built on first use and cached."""
    cached = cache_home() / f"plugin-release-{plugin_key()}" / archive_name()
    if cached.exists():
        return cached
    with _exclusive():
        if not cached.exists():
            staging = cached.parent.with_name(f"{cached.parent.name}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            try:
                _freeze(staging)
                shutil.rmtree(cached.parent, ignore_errors=True)
                staging.rename(cached.parent)  # only a complete archive is ever found
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return cached


def _freeze(into: Path) -> None:
    """PyInstaller's one-folder build of the plugin, archived as Pulumi expects: the engine
    unpacks the whole archive into the plugin's folder and runs the executable at its top. A
    one-file build unpacked itself into TMPDIR at every start (a second, 70 MB, left behind
    by every SIGKILL, and no start at all from a noexec TMPDIR)."""
    started = time.monotonic()
    work = into / "build"
    work.mkdir()
    entry = work / "entry.py"
    entry.write_text(ENTRY)
    say(f"freezing {PLUGIN} with PyInstaller {metadata.version('pyinstaller')} (about a minute)")
    command = [sys.executable, "-m", "PyInstaller", "--onedir", "--noconfirm", "--clean"]
    command += ["--name", PLUGIN, "--paths", str(PROVIDER), "--log-level", "WARN"]
    command += ["--distpath", str(work / "out"), "--workpath", str(work / "tmp")]
    command += ["--specpath", str(work)]
    for module in EXCLUDED:
        command += ["--exclude-module", module]
    for module in HIDDEN:
        command += ["--hidden-import", module]
    # The schema, from these sources, beside native/launch.py: a plugin started only for its
    # schema then answers without importing the deploy layer.
    schema = work / "schema.json"
    schema.write_text(_schema(), encoding="utf-8")
    command += ["--add-data", f"{schema}{os.pathsep}mixpeek_pulumi/native"]
    # This checkout's sources, never an installed copy of the package.
    env = {**os.environ, "PYTHONPATH": str(PROVIDER)}
    done = subprocess.run(
        [*command, str(entry)], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"PyInstaller failed: {done.stderr.strip()[-2000:]}")
    folder = work / "out" / PLUGIN
    _check(folder / PLUGIN)
    with tarfile.open(into / archive_name(), "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                _add(tar, path.relative_to(folder).as_posix(), path.read_bytes(), mode)
            elif path.is_symlink():
                _link(tar, path.relative_to(folder).as_posix(), os.readlink(path))
        _add(tar, "LICENSE", (ROOT / "LICENSE").read_bytes(), 0o644)
    shutil.rmtree(work)
    say(f"froze {PLUGIN} in {time.monotonic() - started:.0f} s")


def _schema() -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mixpeek_pulumi.native.schema import schema_json; "
            "sys.stdout.write(schema_json())",
        ],
        env={**os.environ, "PYTHONPATH": str(PROVIDER)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
    tar.addfile(info)


def _check(binary: Path) -> None:
    """The frozen plugin runs here, alone, and is this checkout's version."""
    done = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    if done.returncode != 0 or done.stdout.strip() != version():
        raise RuntimeError(f"the frozen plugin does not run: {done.stdout}{done.stderr}")


def python_packages(into: Path) -> None:
    """The mixpeek-pulumi wheel and sdist, and the pulumi_mixpeek wheel."""
    for source, kinds in ((ROOT, ["--sdist", "--wheel"]), (ROOT / "sdk" / "python", ["--wheel"])):
        say(f"building {', '.join(k[2:] for k in kinds)} of {source.relative_to(ROOT) or '.'}")
        done = subprocess.run(
            [sys.executable, "-m", "build", *kinds, "--outdir", str(into), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m build {source} failed: {done.stderr.strip()[-2000:]}")


def npm_tarball_name(ver: str | None = None) -> str:
    return f"mixpeek-pulumi-nodejs-{ver or version()}.tgz"


def npm_package(into: Path) -> Path:
    """`@mixpeek/pulumi` compiled and packed with `npm pack`, under ``npm_tarball_name``."""
    found, why = node_toolchain.ensure()
    if found is None:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory(prefix="mixpeek-npm-") as tmp:
        linked = node_toolchain.build_sdk(found, Path(tmp))
        package = (linked / "@mixpeek" / "pulumi").resolve()
        for name in ("README.md",):
            shutil.copyfile(ROOT / "sdk" / "nodejs" / name, package / name)
        shutil.copyfile(ROOT / "LICENSE", package / "LICENSE")
        done = subprocess.run(
            ["npm", "pack", "--pack-destination", str(into), "--loglevel=error"],
            cwd=package,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm pack failed: {done.stderr.strip()[-2000:]}")
        packed = into / done.stdout.strip().splitlines()[-1]
        return packed.rename(into / npm_tarball_name())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", action="store_true", help="only the plugin archive")
    args = parser.parse_args(argv)
    try:
        archive = plugin_archive()
        if args.plugin:
            print(archive)
            return 0
        shutil.rmtree(DIST, ignore_errors=True)
        DIST.mkdir()
        shutil.copyfile(archive, DIST / archive.name)
        python_packages(DIST)
        npm_package(DIST)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        say(f"make dist failed: {exc}")
        return 1
    for path in sorted(DIST.iterdir()):
        say(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
