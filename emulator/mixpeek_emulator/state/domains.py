"""Custom domains: an app's domains, the DNS proof each waits for, and the service's background
worker that moves a verified domain on to TLS and then live, emulated as a function of time.

The worker (SDK ``verify_domain_apps``) checks DNS at an interval once verification is asked
for; when it finds the TXT record the domain is ``provisioning_tls``, then ``active``. There is
no DNS here, so the record is found at the first check unless a hold (``/_emulator/dns``) says
how many checks miss it first, or that every one does. A verification records when it was
asked on the progress clock, the intervals and the misses it was given, so its status is
computed on read and goes on across restarts, as a build's does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from .common import Timing, iso

STATUSES: Final = ("pending", "verifying", "provisioning_tls", "active")
# Certificates of the ACME kind the service provisions automatically last 90 days (inference).
TLS_LIFETIME: Final = 90 * 86_400
# A DNS name of letters, digits and hyphens, two labels at least, whose last label is no
# number (so an IP address is no domain).
_HOSTNAME: Final = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)


def hostname(text: str) -> str | None:
    """``text`` as the domain it names (DNS names ignore case), or None if it names none."""
    name = text.lower()
    return name if name.isascii() and _HOSTNAME.match(name) else None


@dataclass
class Domain:
    domain: str
    verification_token: str
    is_primary: bool
    added_at: float  # wall clock
    # The latest verification: when it was asked (progress and wall clocks), the check
    # interval and TLS time it was given, and how many checks miss the record (None: all).
    verify_progress: float | None = None
    verify_wall: float | None = None
    check_seconds: float = 0.0
    tls_seconds: float = 0.0
    misses: int | None = 0

    def verify(self, now: float, wall: float, timing: Timing, misses: int | None) -> None:
        """Start (or start over) the checks from ``now`` on the progress clock."""
        self.verify_progress, self.verify_wall = now, wall
        self.check_seconds, self.tls_seconds = timing.dns_check_seconds, timing.tls_seconds
        self.misses = misses

    def _found_after(self) -> float | None:
        """Seconds from the verification to the check that finds the record, if one does."""
        if self.verify_progress is None or self.misses is None:
            return None
        return (self.misses + 1) * self.check_seconds

    def status(self, now: float) -> str:
        """Its status at ``now`` on the progress clock."""
        if self.verify_progress is None:
            return "pending"
        found = self._found_after()
        if found is None or now < self.verify_progress + found:
            return "verifying"
        if now < self.verify_progress + found + self.tls_seconds:
            return "provisioning_tls"
        return "active"

    def verified_at(self, now: float) -> float | None:
        """When the record was found, on the wall clock; None until it is."""
        found = self._found_after()
        if found is None or self.status(now) in ("pending", "verifying"):
            return None
        assert self.verify_wall is not None
        return self.verify_wall + found

    def response_json(self, slug: str, now: float) -> dict[str, Any]:
        """``DomainResponse``."""
        verified = self.verified_at(now)
        return {
            "domain": self.domain,
            "status": self.status(now),
            "verification_token": self.verification_token,
            "cname_target": cname_target(slug),
            "is_primary": self.is_primary,
            "verified_at": iso(verified) if verified is not None else None,
        }

    def config_json(self, slug: str, now: float) -> dict[str, Any]:
        """``CustomDomainConfig``, as ``AppResponse.custom_domains`` lists it."""
        body = self.response_json(slug, now)
        live = body["status"] == "active"
        issued = self.verified_at(now)
        digest = hashlib.sha256(f"{self.domain}:{self.verification_token}".encode()).hexdigest()
        body["tls_cert_id"] = f"cert_{digest[:12]}" if live else None
        body["tls_expires_at"] = (
            iso(issued + self.tls_seconds + TLS_LIFETIME) if live and issued is not None else None
        )
        return body


def cname_target(slug: str) -> str:
    """Where a domain's CNAME points: the app's own host (``CustomDomainConfig``'s example)."""
    return f"{slug}.mxp.co"


@dataclass
class DnsHold:
    """The DNS the worker sees for domains matching ``domain`` (a glob): the TXT record is
    missing from the first ``misses`` checks of each verification, or from all (None)."""

    domain: str
    misses: int | None


@dataclass
class DnsHolds:
    """The holds set through the control plane, the latest first to match; not persisted, like
    faults."""

    holds: list[DnsHold] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hold: DnsHold) -> None:
        with self.lock:
            self.holds.append(hold)

    def misses(self, domain: str) -> int | None:
        with self.lock:
            for hold in reversed(self.holds):
                if fnmatch.fnmatchcase(domain, hold.domain):
                    return hold.misses
        return 0

    def listed(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"domain": h.domain, "misses": h.misses} for h in self.holds]

    def clear(self) -> None:
        with self.lock:
            self.holds.clear()
