"""The service's documented plugin checks, run locally so `pulumi preview` shows them.

Required files: ``manifest.py`` and ``pipeline.py``. The security scan is AST-based: imports of
``subprocess``, ``ctypes``, ``socket``, ``multiprocessing`` and ``threading`` are blocked, and so
are calls to ``os.system``, ``os.popen``, ``os.exec*``, ``eval``, ``exec``, ``open`` and
``__import__``; ``import os`` itself is allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import safe_name
from .layout import entry_prefix
from .sources import SourceFile

REQUIRED: Final = ("manifest.py", "pipeline.py")
REALTIME: Final = "realtime.py"  # beside manifest.py: without it, the service deploys batch-only
BANNED_MODULES: Final = frozenset(
    {"subprocess", "ctypes", "socket", "multiprocessing", "threading"}
)
BANNED_BUILTINS: Final = frozenset({"eval", "exec", "open", "__import__"})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    what: str

    def __str__(self) -> str:
        # The path is a file name the user controls, and a syntax error may quote its source.
        return safe_name(f"{self.path}:{self.line}:{self.column}: {self.what}")


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: list[Finding] = []

    def _flag(self, node: ast.stmt | ast.expr, what: str) -> None:
        self.findings.append(Finding(self.path, node.lineno, node.col_offset, what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.partition(".")[0] in BANNED_MODULES:
                self._flag(node, f"blocked import '{alias.name}'")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if (node.module or "").partition(".")[0] in BANNED_MODULES:
            self._flag(node, f"blocked import '{node.module}'")

    def visit_Call(self, node: ast.Call) -> None:
        target = node.func
        if isinstance(target, ast.Name) and target.id in BANNED_BUILTINS:
            self._flag(node, f"blocked call '{target.id}()'")
        elif _is_os_exec(target):
            assert isinstance(target, ast.Attribute)
            self._flag(node, f"blocked call 'os.{target.attr}()'")
        self.generic_visit(node)


def _is_os_exec(target: ast.expr) -> bool:
    return (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "os"
        and (target.attr in ("system", "popen") or target.attr.startswith("exec"))
    )


def scan(path: str, source: str) -> list[Finding]:
    """Findings for one Python file, in source order."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 0, exc.offset or 0, f"syntax error: {exc.msg}")]
    scanner = _Scanner(path)
    scanner.visit(tree)
    return sorted(scanner.findings, key=lambda f: (f.line, f.column))


def has_realtime(files: Sequence[SourceFile]) -> bool:
    """Whether the plugin can serve realtime inference: ``realtime.py`` beside ``manifest.py``
    (spec 0.81 deploys a plugin without it for batch processing only)."""
    prefix = entry_prefix(files, "manifest.py")
    return prefix is not None and f"{prefix}{REALTIME}" in {f.rel for f in files}


def check_plugin(files: Sequence[SourceFile]) -> list[str]:
    """Every problem the service would report for these files, as ``file:line:col: what``."""
    prefix = entry_prefix(files, "manifest.py")
    problems = [
        f"{name} is required but missing"
        for name in REQUIRED
        if prefix is None or f"{prefix}{name}" not in {f.rel for f in files}
    ]
    for f in files:
        if not f.rel.endswith(".py"):
            continue
        with f.open() as handle:
            text = handle.read().decode("utf-8", errors="replace")
        rel = f.rel[len(prefix) :] if prefix and f.rel.startswith(prefix) else f.rel
        problems.extend(str(finding) for finding in scan(rel, text))
    return problems
