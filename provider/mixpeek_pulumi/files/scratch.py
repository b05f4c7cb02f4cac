"""Unnamed temporary files for archives and downloads: in TMPDIR when it takes one, else in
the user's cache folder, so a read-only or full TMPDIR (as on hardened CI runners) is no
failure. The files have no name (or lose it at once), so nothing is left behind, whatever
ends the process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO


def fallback_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "scratch"


def temporary_file(prefix: str) -> IO[bytes]:
    """An unnamed temporary file open for reading and writing."""
    try:
        return tempfile.TemporaryFile(prefix=prefix)
    except OSError as first:
        folder = fallback_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return tempfile.TemporaryFile(prefix=prefix, dir=folder)
        except OSError:
            raise first from None
