"""The folders are the layers, and each imports only from the layers below it: the base
modules, then ``api`` and ``files`` (HTTP and local files, unaware of each other), then ``run``
(one call), then ``kinds`` (what each resource does, no Pulumi), then the two front doors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mixpeek_pulumi

PACKAGE = Path(mixpeek_pulumi.__file__).parent
RANK = {"base": 0, "api": 1, "files": 1, "run": 2, "kinds": 3, "resources": 4, "native": 4}
"""Each layer's height; a module may import its own layer and any lower one."""
BASE = {"errors", "deadline", "config", "_version", "sizes"}


def layer_of(module: str) -> str:
    """``mixpeek_pulumi.kinds.spec`` → ``kinds``; the base modules are ``base``."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    return "base" if head in BASE else head


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module of the package ``path`` imports, with its line, relative imports resolved."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = name.rsplit(".", 1)[0] if path.name != "__init__.py" else name
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, t) for line, t in found if t.startswith("mixpeek_pulumi.")]


MODULES = sorted(
    p
    for p in PACKAGE.rglob("*.py")
    if p.parent != PACKAGE and layer_of(f"x.{p.parent.name}") in RANK
)


def test_every_module_lives_in_a_layer() -> None:
    folders = {p.parent.name for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE}
    assert folders <= set(RANK) - {"base"}, folders - set(RANK)
    loose = {p.stem for p in PACKAGE.glob("*.py")} - BASE - {"__init__", "__main__"}
    assert not loose, f"modules outside every layer: {sorted(loose)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_the_ones_below(path: Path) -> None:
    own = path.parent.name
    upward = [
        f"line {line}: {target}"
        for line, target in imports(path)
        if RANK[layer_of(target)] > RANK[own]
        or (layer_of(target) != own and RANK[layer_of(target)] == RANK[own])
    ]
    assert not upward, (
        f"{path.relative_to(PACKAGE)} imports from a layer above or beside it: {upward}"
    )


def test_the_base_modules_import_no_layer() -> None:
    for name in BASE:
        path = PACKAGE / f"{name}.py"
        above = [t for _, t in imports(path) if layer_of(t) != "base"]
        assert not above, f"{name}.py imports {above}"
