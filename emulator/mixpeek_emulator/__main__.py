"""`mixpeek-emulator`: serve the local Mixpeek API until SIGINT/SIGTERM.

`--help` and `--version` need only the standard library; serving needs the `emulator` extra
(FastAPI, uvicorn), imported only then, so a missing extra is one sentence saying what to install.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from .disk import DiskFull, full_message
from .state import ENVIRONMENTS, EXTENSIONS, STATUS_CASES, Timing

DISTRIBUTION = "mixpeek-pulumi"
INSTALL_EXTRA = "pip install 'mixpeek-pulumi[emulator]'"


def version() -> str:
    """The installed mixpeek-pulumi's version (the emulator ships in it)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixpeek-emulator",
        description="A local stand-in for the Mixpeek App and Plugin API. Prints its URL as the "
        "first line, then one line per app it created (`app <id> <slug>`), then where each of "
        "their environments is served live: `site <id> <environment> <url>` (any app's is "
        "<url>/_sites/<app id>/<environment>) and `host <id> <environment> <url>`, the site at "
        "the root of a host of its own (any app's is http://<slug>.<environment>.localhost:"
        "<port>/, production's also http://<slug>.localhost:<port>/).",
        epilog=f"Serving needs the emulator extra: {INSTALL_EXTRA}",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MIXPEEK_EMULATOR_API_KEY"),
        help="the bearer key clients must send (or MIXPEEK_EMULATOR_API_KEY)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep state, uploads and the key presigned URLs are signed with here, across restarts",
    )
    parser.add_argument("--build-seconds", type=_seconds, default=3.0)
    parser.add_argument("--queue-seconds", type=_seconds, default=0.5)
    parser.add_argument("--plugin-seconds", type=_seconds, default=3.0)
    parser.add_argument(
        "--dns-check-seconds",
        type=_seconds,
        default=1.0,
        help="between the custom-domain worker's DNS checks (the service's: 30 minutes)",
    )
    parser.add_argument(
        "--tls-seconds",
        type=_seconds,
        default=2.0,
        help="from a domain's DNS record found to its certificate live",
    )
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="SLUG",
        help="an app that exists from the start; its id is app_ and the slug with each - "
        "turned into _ (--app my-site makes app_my_site); repeatable",
    )
    parser.add_argument(
        "--extension",
        action="append",
        default=[],
        choices=sorted(EXTENSIONS),
        help="answer with fields the official models do not define (off by default)",
    )
    parser.add_argument(
        "--plugin-status-case",
        type=str.lower,
        choices=STATUS_CASES,
        # Declared but empty, as CI often leaves a variable, means unset.
        default=(os.environ.get("MIXPEEK_EMULATOR_PLUGIN_STATUS_CASE") or "lower").lower(),
        help="spell plugin statuses as the API's wire examples do (lower: deployed, the "
        "default) or as its status model's description does (upper: DEPLOYED); or "
        "MIXPEEK_EMULATOR_PLUGIN_STATUS_CASE",
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:  # also false for NaN
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds from 0 to 3600")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if not args.api_key:
        parser.error("--api-key (or MIXPEEK_EMULATOR_API_KEY) is required")
    if args.plugin_status_case not in STATUS_CASES:  # a default from the environment
        parser.error(
            f"MIXPEEK_EMULATOR_PLUGIN_STATUS_CASE is {args.plugin_status_case!r}; use lower or upper"
        )
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    try:
        from .app import create_app
        from .server import bind, server_for, url_of
    except ModuleNotFoundError as exc:
        print(  # noqa: T201
            f"mixpeek-emulator cannot start: the module {exc.name!r} is missing; the emulator "
            f"needs its extra: {INSTALL_EXTRA}",
            file=sys.stderr,
        )
        return 2
    stop = _StopRequests()
    try:
        emulator = create_app(
            api_key=args.api_key,
            data_dir=args.data_dir,
            timing=Timing(
                args.queue_seconds,
                args.build_seconds,
                args.plugin_seconds,
                args.dns_check_seconds,
                args.tls_seconds,
            ),
            apps=tuple(args.app),
            extensions=tuple(args.extension),
            plugin_status_case=args.plugin_status_case,
        )
        sock = bind(args.host, args.port)
    except (OSError, ValueError) as exc:
        why = _reason(exc, args.data_dir or Path(tempfile.gettempdir()))
        print(f"mixpeek-emulator cannot start: {why}.", file=sys.stderr)  # noqa: T201
        return 2
    url = url_of(sock, tls)
    print(url, flush=True)  # noqa: T201 - the first line is the contract
    # The ids the service made, as a client would list them; then where each environment of
    # those apps is served live (the service's own hosts are not reachable here).
    seeded = [a for a in list(emulator.store.state.apps.values()) if a.slug in args.app]
    for app in seeded:
        print(f"app {app.app_id} {app.slug}", flush=True)  # noqa: T201
    for app in seeded:
        for env in ENVIRONMENTS:
            print(f"site {app.app_id} {env} {url}/_sites/{app.app_id}/{env}", flush=True)  # noqa: T201
            print(f"host {app.app_id} {env} {host_url(url, app.slug, env)}", flush=True)  # noqa: T201
    try:
        server = stop.server = server_for(emulator, sock, tls)
        if not stop.requested:
            server.run(sockets=[sock])
    finally:
        emulator.close()
    return 0


class _StopRequests:
    """SIGINT/SIGTERM handlers in place before the URL is printed: a stop that comes before
    the server runs ends it as soon as it starts, and the scratch folder is removed either way.
    uvicorn re-raises the signal that stopped it once it has shut down; with these as the
    handlers it restores, that ends in a clean exit status instead of a "killed"."""

    def __init__(self) -> None:
        self.requested = False
        self.server: Any = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


def host_url(url: str, slug: str, environment: str) -> str:
    """Where an environment is served at the root of a host of its own: the emulator's port
    under ``<slug>.<environment>.localhost``, which browsers resolve to loopback."""
    scheme, _, address = url.partition("://")
    port = address.rpartition(":")[2]
    return f"{scheme}://{slug}.{environment}.localhost:{port}/"


def _reason(exc: Exception, folder: Path) -> str:
    if isinstance(exc, DiskFull):
        return full_message(folder, "its")
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror.lower()}{where}"
    return str(exc).rstrip(".")


if __name__ == "__main__":
    sys.exit(main())
