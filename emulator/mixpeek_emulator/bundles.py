"""What the service checks inside uploaded archives: app bundles and plugin sources.

Apps: a valid zip with ``index.html`` at its root or inside one top-level folder. Plugins:
``manifest.py`` and ``pipeline.py``, and the documented AST security scan (blocked imports
``subprocess``, ``ctypes``, ``socket``, ``multiprocessing``, ``threading``; blocked calls
``os.system``, ``os.popen``, ``os.exec*``, ``eval``, ``exec``, ``open``, ``__import__``).

Two rules here are the emulator's own protection, not documented API rules: entries that climb
out of the archive are refused, and so is an archive expanding past 4 GiB. No compression-ratio
rule is applied: no Mixpeek document states one.
"""

from __future__ import annotations

import ast
import hashlib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAX_UNCOMPRESSED = 4 * 1024**3
# What reading a damaged, encrypted or exotic archive raises.
UNREADABLE = (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError, zlib.error)
BLOCKED_IMPORTS = frozenset({"subprocess", "ctypes", "socket", "multiprocessing", "threading"})
BLOCKED_CALLS = frozenset({"eval", "exec", "open", "__import__"})
BLOCKED_OS_CALLS = frozenset({"system", "popen"})


@dataclass
class AppBundle:
    ok: bool
    reason: str = ""
    entry: str = ""
    files: dict[str, dict[str, object]] = field(default_factory=dict)


def read_site_file(path: Path, rel: str) -> bytes | None:
    """The bytes of ``rel`` in a deployed bundle, relative to its site root (the folder that
    holds index.html), or None when the bundle has no such file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
            entry = _find_entry(names, "index.html")
            prefix = entry[: -len("index.html")] if entry else ""
            if prefix + rel not in names or ".." in rel.split("/"):
                return None
            return archive.read(prefix + rel)
    except UNREADABLE:
        return None


def inspect_app_bundle(path: Path | None) -> AppBundle:
    """Read a bundle as the build service does; never extracts anything to disk."""
    if path is None or not path.is_file():
        return AppBundle(False, "the bundle was not found in storage (was it uploaded?)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            problem = _unsafe(infos)
            if problem:
                return AppBundle(False, problem)
            names = [i.filename for i in infos]
            entry = _find_entry(names, "index.html")
            if entry is None:
                return AppBundle(
                    False,
                    "no index.html at the root of the zip or inside a single top-level folder",
                )
            prefix = entry[: -len("index.html")]
            files: dict[str, dict[str, object]] = {}
            for info in infos:
                rel = (
                    info.filename[len(prefix) :]
                    if info.filename.startswith(prefix)
                    else info.filename
                )
                digest = hashlib.sha256()
                with archive.open(info) as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                files[rel] = {"hash": digest.hexdigest(), "size": info.file_size}
    except UNREADABLE as exc:
        return AppBundle(False, f"the bundle is not a valid zip archive ({exc})")
    return AppBundle(True, entry=entry, files=files)


def _unsafe(infos: list[zipfile.ZipInfo]) -> str:
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            return f"the archive entry {name!r} escapes the bundle root"
        total += info.file_size
    if total > MAX_UNCOMPRESSED:
        return "the archive expands to more than 4 GiB"
    return ""


def _find_entry(names: list[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/{wanted}" in names:
            return f"{top}/{wanted}"
    return None


@dataclass
class Violation:
    file: str
    line: int
    column: int
    message: str

    def text(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass
class PluginArchive:
    errors: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    manifest: str = ""
    realtime: bool = False  # has realtime.py beside manifest.py: it can serve realtime inference

    @property
    def ok(self) -> bool:
        return not self.errors and not self.violations


def inspect_plugin_archive(path: Path) -> PluginArchive:
    result = PluginArchive()
    if not path.is_file():
        result.errors.append("the plugin archive was not found in storage")
        return result
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            problem = _unsafe(infos)
            if problem:
                result.errors.append(problem)
                return result
            names = [i.filename for i in infos]
            manifest = _find_entry(names, "manifest.py")
            prefix = manifest[: -len("manifest.py")] if manifest else ""
            for required in ("manifest.py", "pipeline.py"):
                if prefix + required not in names:
                    result.errors.append(f"{required} is required but missing from the archive")
            result.realtime = prefix + "realtime.py" in names
            for info in infos:
                if not info.filename.endswith(".py"):
                    continue
                rel = info.filename[len(prefix) :]
                source = archive.read(info).decode("utf-8", errors="replace")
                if rel == "manifest.py":
                    result.manifest = source
                result.violations.extend(scan_source(rel, source))
    except UNREADABLE as exc:
        result.errors.append(f"the plugin archive is not a valid zip file ({exc})")
    return result


def scan_source(filename: str, source: str) -> list[Violation]:
    """The documented AST security scan for one Python file."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        return [Violation(filename, exc.lineno or 0, exc.offset or 0, f"syntax error: {exc.msg}")]
    found = [_v(filename, node, message) for node in ast.walk(tree) for message in _blocked(node)]
    return sorted(found, key=lambda v: (v.line, v.column))


def _blocked(node: ast.AST) -> list[str]:
    """What the scan says of one node: a blocked import or call, each as its message."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [f"blocked import '{n}'" for n in names if n.split(".")[0] in BLOCKED_IMPORTS]
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return [f"blocked import '{module}'"] if module.split(".")[0] in BLOCKED_IMPORTS else []
    if isinstance(node, ast.Call):
        called = _called(node.func)
        return [f"blocked call '{called}()'"] if called is not None else []
    return []


def _called(func: ast.expr) -> str | None:
    """The blocked function a call names, as the scan reports it, or None."""
    if isinstance(func, ast.Name) and func.id in BLOCKED_CALLS:
        return func.id
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "os"
        and (func.attr in BLOCKED_OS_CALLS or func.attr.startswith("exec"))
    ):
        return f"os.{func.attr}"
    return None


def _v(filename: str, node: ast.AST, message: str) -> Violation:
    # Only statements and expressions are reported, and both carry a position.
    return Violation(filename, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), message)
