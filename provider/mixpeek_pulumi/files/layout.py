"""Where a bundle's entry file sits, by the service's rule: at the root, or inside one single
top-level folder, which is then the root the service serves from."""

from __future__ import annotations

from collections.abc import Sequence

from .sources import SourceFile


def entry_prefix(files: Sequence[SourceFile], entry: str = "index.html") -> str | None:
    """Where ``entry`` sits by the service's rule: the root, or one single top-level folder."""
    names = {f.rel for f in files}
    if entry in names:
        return ""
    tops = {f.rel.split("/", 1)[0] for f in files}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/{entry}" in names:
            return f"{top}/"
    return None
