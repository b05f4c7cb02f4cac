"""What both domains share: ids, timestamps in the wire format, the opt-in extensions and the
stage durations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

# Off by default: richer answers than the official models define, named so users opt in.
EXTENSIONS: Final = frozenset({"environment-details", "version-deploy-ids"})


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@dataclass
class Timing:
    """Stage durations in seconds; tests make them short, faults change them."""

    queue_seconds: float = 0.2
    build_seconds: float = 1.0
    plugin_seconds: float = 1.0
    # The custom-domain worker: between its DNS checks (the service's is 30 minutes), and from
    # the record found to the certificate live.
    dns_check_seconds: float = 0.2
    tls_seconds: float = 0.3
