"""A full disk: every write the emulator makes to its data folder raises ``DiskFull`` when
there is no room left, which the app answers in the route family's error envelope."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(OSError):
    """No space (or no quota) left for a write of the emulator's."""


@contextmanager
def writing() -> Iterator[None]:
    """Turn a write's "no space left" into ``DiskFull``; any other error passes as it is."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFull(exc.errno, exc.strerror, exc.filename) from exc
        raise


def full_message(folder: Path, whose: str = "mixpeek-emulator's") -> str:
    """What a client (or, at start, the user) is told: that the disk is full, where, and what
    to do."""
    return (
        f"{whose} disk is full: no space is left on the device that holds its data folder "
        f"{folder}; free some space there, or start the emulator with --data-dir on a larger disk"
    )
