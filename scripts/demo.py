"""`make demo`: `pulumi up` of the demo project against a local mixpeek-emulator.

Uses the Pulumi CLI that `make pulumi` found or got (PATH, its cache, Pulumi's installer, or a
build from Go modules). Where there is none, it says so and runs the same program through the
test suite's engine stand-in (the real provider host, driven over gRPC as `pulumi up` drives it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from scripts.pulumi_cli import ROOT, Cli, locate
from scripts.pulumi_stack import CliStack

STATE = ROOT / ".pulumi"
SHOWN = ("deploy_id", "version", "url", "production_url", "route_prefix", "feature_uri")


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def emulator(api_key: str) -> Iterator[str]:
    """mixpeek-emulator as a process of its own, with the demo app already created."""
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
            "demo-site",
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


def with_cli(cli: Cli, url: str, api_key: str) -> None:
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
    stack.set_config("verifyUrl", live_site(url))
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


def live_site(url: str) -> str:
    """Where the emulator serves production's live files, for the promotion's checks."""
    return f"{url}/_sites/app_demo_site/production"


def with_engine_stand_in(url: str, api_key: str) -> None:
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
    try:
        engine = FakeEngine(
            host,
            config={
                "mixpeek:apiKey": api_key,
                "mixpeek:baseUrl": url,
                "mixpeek-demo:verifyUrl": live_site(url),
            },
            secret_keys={"mixpeek:apiKey"},
            project="mixpeek-demo",
            stack="demo",
        )
        say("\n== [engine stand-in] pulumi up ==")
        result = run_program(engine, program)
        for op, name in result.steps:
            say(f"  {op:<8} {name}")
        show(result.outputs)
        say("\n== [engine stand-in] pulumi preview --expect-no-changes ==")
        preview = run_program(engine, program, preview=True)
        changed = [(op, name) for op, name in preview.steps if op != "same"]
        for op, name in preview.steps:
            say(f"  {op:<8} {name}")
        if changed:
            raise SystemExit(f"preview expected no changes but found {changed}")
        say("  no changes")
    finally:
        host.close()


def main() -> int:
    api_key = f"sk_demo_{secrets.token_hex(16)}"
    cli = locate()  # `make pulumi` ran first and got one if it could
    with emulator(api_key) as url:
        if cli is not None:
            say(f"Using the Pulumi CLI {cli.version} at {cli.pulumi} ({cli.source})")
            with_cli(cli, url, api_key)
        else:
            with_engine_stand_in(url, api_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
