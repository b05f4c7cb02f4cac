"""`make demo`: `pulumi up` of the demo project against a local mixpeek-emulator.

Uses the Pulumi CLI that `make pulumi` found or got (PATH, its cache, Pulumi's installer, or a
build from Go modules). Where there is none, it says so and runs the same program through the
test suite's engine stand-in (the real provider host, driven over gRPC as `pulumi up` drives it).

    python -m scripts.demo                                  # the example site
    python -m scripts.demo --bundle ../shop/dist --app-id app_shop --verify-text "<h1>Shop"

`make demo BUNDLE=... APP_ID=... VERIFY_TEXT=...` passes the same options (as
MIXPEEK_DEMO_BUNDLE, MIXPEEK_DEMO_APP_ID and MIXPEEK_DEMO_VERIFY_TEXT): your own build is
deployed, promoted, and checked for that text on the emulator's live production site.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.pulumi_cli import ROOT, Cli, locate
from scripts.pulumi_stack import CliStack

STATE = ROOT / ".pulumi"
SHOWN = ("deploy_id", "version", "url", "production_url", "verified", "route_prefix", "feature_uri")
APP_ID = re.compile(r"app_[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Choices:
    """What to deploy: a build folder or .zip (None: the example site), the app it goes to,
    and the text its live production site must contain (None: a 200 is enough)."""

    bundle: Path | None = None
    app_id: str = "app_demo_site"
    verify_text: str | None = None

    @property
    def slug(self) -> str:
        """The slug the emulator makes this app id from (`--app my-site` is `app_my_site`)."""
        return self.app_id.removeprefix("app_").replace("_", "-")

    def config(self) -> dict[str, str]:
        """The demo program's settings, under its own names."""
        found = {
            "appId": self.app_id,
            "bundle": str(self.bundle) if self.bundle else "",
            "verifyText": self.verify_text or "",
        }
        return {k: v for k, v in found.items() if v}


def choices(argv: list[str] | None) -> Choices:
    """The command line's choices, or SystemExit with a sentence saying what to change."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle",
        default=env.get("MIXPEEK_DEMO_BUNDLE") or None,
        help="your build folder or .zip (make demo BUNDLE=...)",
    )
    parser.add_argument(
        "--app-id",
        default=env.get("MIXPEEK_DEMO_APP_ID") or "app_demo_site",
        help="the app to deploy to, app_ and its slug (make demo APP_ID=...)",
    )
    parser.add_argument(
        "--verify-text",
        default=env.get("MIXPEEK_DEMO_VERIFY_TEXT") or None,
        help="text the live production site must hold (make demo VERIFY_TEXT=...)",
    )
    args = parser.parse_args(argv)
    bundle = None
    if args.bundle:
        bundle = Path(args.bundle).expanduser().resolve()
        if not (bundle.is_dir() or (bundle.is_file() and bundle.suffix.lower() == ".zip")):
            parser.exit(
                2,
                f"make demo cannot start: BUNDLE={args.bundle} is neither a folder nor a .zip "
                f"file (it was looked for at {bundle}); give the folder your build writes, the "
                "one with index.html.\n",
            )
    if not APP_ID.fullmatch(args.app_id):
        parser.exit(
            2,
            f"make demo cannot start: APP_ID={args.app_id} is not an id the emulator can make; "
            "use app_ and letters, digits or underscores, as in app_my_site.\n",
        )
    return Choices(bundle, args.app_id, args.verify_text or None)


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def emulator(api_key: str, slug: str) -> Iterator[str]:
    """mixpeek-emulator as a process of its own, with the demo's app already created."""
    env = {**os.environ, "MIXPEEK_EMULATOR_API_KEY": api_key}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixpeek_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--app",
            slug,
            "--build-seconds",
            "2",
            "--plugin-seconds",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        say(f"mixpeek-emulator is serving the Mixpeek API at {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        say("mixpeek-emulator stopped.")


def show(outputs: dict[str, object]) -> None:
    say("Outputs:")
    for key in SHOWN:
        if key in outputs:
            say(f"  {key:<16} {outputs[key]}")


def with_cli(cli: Cli, url: str, api_key: str, chosen: Choices) -> None:
    """The real CLI and engine, with a local file backend in .pulumi/ and a demo passphrase."""
    shutil.rmtree(STATE, ignore_errors=True)  # the emulator starts empty, so does the stack
    (ROOT / "Pulumi.demo.yaml").unlink(missing_ok=True)
    stack = CliStack(
        cli,
        ROOT,
        "demo",
        backend=STATE,
        passphrase="mixpeek-demo",
        env={"MIXPEEK_PULUMI_STATE_DIR": str(STATE / "inflight")},
    )
    stack.set_config("mixpeek:baseUrl", url)
    stack.set_config("mixpeek:apiKey", api_key, secret=True)
    stack.set_config("verifyUrl", live_site(url, chosen.app_id))
    for key, value in chosen.config().items():
        stack.set_config(key, value)
    stack.echo = lambda line: say(f"  {line}")
    how = "" if not stack.inline else " (the program is served inline: see README)"
    say(f"\n== pulumi up{how} ==")
    if not stack.up().ok:
        raise SystemExit("pulumi up failed (its output is above)")
    stack.echo = None
    show(stack.outputs())
    stack.echo = lambda line: say(f"  {line}")
    say("\n== pulumi preview --expect-no-changes (a second run changes nothing) ==")
    if not stack.preview(expect_no_changes=True).ok:
        raise SystemExit("pulumi preview found changes on an unchanged program")


def live_site(url: str, app_id: str) -> str:
    """Where the emulator serves production's live files, for the promotion's checks."""
    return f"{url}/_sites/{app_id}/production"


def with_engine_stand_in(url: str, api_key: str, chosen: Choices) -> None:
    from tests.engine import FakeEngine, ProviderHost, run_program  # the suite's engine stand-in

    say(
        "There is no Pulumi CLI here (`make pulumi` above says why), so the demo runs the same "
        "program through the test suite's engine stand-in instead.\n"
        "[engine stand-in] The real provider host (python -m pulumi.dynamic) is driven over gRPC "
        "as `pulumi up` drives it; state is kept in memory for this run."
    )
    program = ROOT / "examples" / "demo" / "__main__.py"
    host = ProviderHost(
        project="mixpeek-demo", env={"MIXPEEK_PULUMI_STATE_DIR": str(STATE / "inflight")}, echo=True
    )
    # The program reads its own settings; the provider host is configured with the endpoint
    # and key only, as `pulumi up` configures it.
    settings = {"verifyUrl": live_site(url, chosen.app_id), **chosen.config()}
    config = {f"mixpeek-demo:{k}": v for k, v in settings.items()}
    try:
        engine = FakeEngine(
            host,
            config={"mixpeek:apiKey": api_key, "mixpeek:baseUrl": url},
            secret_keys={"mixpeek:apiKey"},
            project="mixpeek-demo",
            stack="demo",
        )
        say("\n== [engine stand-in] pulumi up ==")
        result = run_program(engine, program, config=config)
        for op, name in result.steps:
            say(f"  {op:<8} {name}")
        show(result.outputs)
        say("\n== [engine stand-in] pulumi preview --expect-no-changes ==")
        preview = run_program(engine, program, config=config, preview=True)
        changed = [(op, name) for op, name in preview.steps if op != "same"]
        for op, name in preview.steps:
            say(f"  {op:<8} {name}")
        if changed:
            raise SystemExit(f"preview expected no changes but found {changed}")
        say("  no changes")
    finally:
        host.close()


def main(argv: list[str] | None = None) -> int:
    chosen = choices(argv)
    api_key = f"sk_demo_{secrets.token_hex(16)}"
    cli = locate()  # `make pulumi` ran first and got one if it could
    if chosen.bundle is not None:
        say(f"Deploying your build at {chosen.bundle} to {chosen.app_id}")
    with emulator(api_key, chosen.slug) as url:
        if cli is not None:
            say(f"Using the Pulumi CLI {cli.version} at {cli.pulumi} ({cli.source})")
            with_cli(cli, url, api_key, chosen)
        else:
            with_engine_stand_in(url, api_key, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
