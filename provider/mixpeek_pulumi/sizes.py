"""How every message prints a byte size or a transfer rate: one unit system (KiB, MiB, GiB)."""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB
_UNITS: Final = ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB"))


def size_text(size: float) -> str:
    """``500 MiB``, ``95.4 MiB``, ``12 KiB``, ``300 bytes``: whole where exact, else one decimal."""
    for unit, name in _UNITS:
        if size >= unit:
            whole, rest = divmod(size, unit)
            return f"{int(whole)} {name}" if rest == 0 else f"{size / unit:.1f} {name}"
    return f"{int(size)} bytes"


def rate_text(size: float, seconds: float) -> str:
    """``25.3 MiB/s``: ``size`` bytes over ``seconds``."""
    return f"{size_text(round(size / max(seconds, 1e-6)))}/s"
