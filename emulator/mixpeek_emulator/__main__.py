"""`mixpeek-emulator`: serve the local Mixpeek API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .app import create_app
from .server import bind, server_for, url_of
from .state import Timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mixpeek-emulator", description="A local stand-in for the Mixpeek App and Plugin API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MIXPEEK_EMULATOR_API_KEY"),
        help="the bearer key clients must send (or MIXPEEK_EMULATOR_API_KEY)",
    )
    parser.add_argument("--data-dir", type=Path, help="keep state and uploads here across restarts")
    parser.add_argument("--build-seconds", type=float, default=3.0)
    parser.add_argument("--queue-seconds", type=float, default=0.5)
    parser.add_argument("--plugin-seconds", type=float, default=3.0)
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="SLUG",
        help="an app that exists from the start, with app_id app_<slug>",
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    if not args.api_key:
        parser.error("--api-key (or MIXPEEK_EMULATOR_API_KEY) is required")
    timing = Timing(args.queue_seconds, args.build_seconds, args.plugin_seconds)
    emulator = create_app(
        api_key=args.api_key, data_dir=args.data_dir, timing=timing, apps=tuple(args.app)
    )
    sock = bind(args.host, args.port)
    print(url_of(sock, tls), flush=True)  # noqa: T201 - the first line is the contract
    server = server_for(emulator, sock, tls)
    # uvicorn re-raises the signal that stopped it once it has shut down; with these as the
    # handlers it restores, a requested stop ends in a clean exit status instead of a "killed".
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
