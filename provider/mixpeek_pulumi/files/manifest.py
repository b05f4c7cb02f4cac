"""Which files of a bundle differ from what is live: compact manifests and their summary.

A manifest maps each path, as the service names it (inside the folder that holds
``index.html``), to the first ``HASH_CHARS`` hex digits of the file's sha256. The baseline is
what the environment serves: the served version's ``asset_manifest`` where the service gives
one with sha256 hashes, else the manifest of the files this provider uploaded. It is kept in
the state (``bundle_files``) for bundles of at most ``MAX_FILES`` files, so a preview compares
without a network call; above that only the content digest is compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..errors import safe_name
from .contents import hashed
from .layout import entry_prefix
from .sources import SourceFile

MAX_FILES: Final = 1000
"""Bundles with more files keep no file list in state: a preview then names no files."""
HASH_CHARS: Final = 16
"""64 bits of each file's sha256: enough to tell two versions of one file apart."""
NAMES_SHOWN: Final = 10
"""How many changed paths a preview names; the rest are counted."""
NAME_SHOWN_MOST: Final = 120
"""The longest file name a preview line shows whole."""
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


def of_files(files: Sequence[SourceFile]) -> tuple[str, dict[str, str] | None]:
    """The content digest of ``files`` and their manifest (None over ``MAX_FILES``), from one
    read of each file."""
    found, hashes = hashed(files)
    return found.sha256, of_hashes(files, hashes)


def of_hashes(files: Sequence[SourceFile], hashes: Sequence[bytes]) -> dict[str, str] | None:
    """The manifest of ``files`` whose sha256 digests are known (``hashes``, in order), or None
    over ``MAX_FILES``."""
    if len(files) > MAX_FILES:
        return None
    prefix = entry_prefix(files) or ""
    return {
        f.rel.removeprefix(prefix): h.hex()[:HASH_CHARS] for f, h in zip(files, hashes, strict=True)
    }


def from_service(asset_manifest: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A version's ``asset_manifest`` (path → {s3_key, hash, size}) as a manifest, when every
    hash is a sha256 (the only kind comparable with local files); else None."""
    if not asset_manifest or len(asset_manifest) > MAX_FILES:
        return None
    found: dict[str, str] = {}
    for path, meta in asset_manifest.items():
        value = meta.get("hash") if isinstance(meta, Mapping) else None
        if not isinstance(value, str) or not _SHA256.match(value.lower()):
            return None
        found[str(path)] = value.lower()[:HASH_CHARS]
    return found


def changes(
    old: Mapping[str, str], new: Mapping[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """Changed, added and removed paths, sorted."""
    changed = sorted(p for p in new if p in old and old[p] != new[p])
    added = sorted(p for p in new if p not in old)
    removed = sorted(p for p in old if p not in new)
    return changed, added, removed


def summary(what: str, old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """``bundle: 2 changed, 1 added, 0 removed: a.js, index.html, +new.css``; unchanged files
    are never named, and past ``NAMES_SHOWN`` paths the rest are counted."""
    changed, added, removed = changes(old, new)
    counts = f"{what}: {len(changed)} changed, {len(added)} added, {len(removed)} removed"
    names = [shown(p) for p in changed]
    names += [f"+{shown(p)}" for p in added] + [f"-{shown(p)}" for p in removed]
    if not names:
        return f"{counts} (the same files; only their packing differs)"
    listed = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{counts}: {listed}" + (f", and {more} more" if more > 0 else "")


def shown(path: str) -> str:
    """A path as a preview's list of files names it: escaped, and cut when long."""
    return safe_name(path, NAME_SHOWN_MOST)
