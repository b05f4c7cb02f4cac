"""`make demo`: `pulumi up` of the demo project against a local mixpeek-emulator.

Uses the Pulumi CLI from PATH, or installs a pinned one into .tools/ with Pulumi's official
installer. When neither works (no internet), it says so and runs the same program through the
test suite's engine stand-in (the real provider host, driven over gRPC as `pulumi up` drives it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PULUMI_VERSION = "3.272.0"
TOOLS = ROOT / ".tools" / "pulumi"
STATE = ROOT / ".pulumi"
SHOWN = ("deploy_id", "version", "url", "production_url", "route_prefix", "feature_uri")


def say(text: str) -> None:
    print(text, flush=True)


def find_or_install_cli() -> str | None:
    found = shutil.which("pulumi") or (
        str(TOOLS / "bin" / "pulumi") if (TOOLS / "bin" / "pulumi").exists() else None
    )
    if found:
        return found
    if shutil.which("curl") is None:
        return None
    say(f"Installing the Pulumi CLI {PULUMI_VERSION} into .tools/pulumi with Pulumi's installer...")
    script = ROOT / ".tools" / "install-pulumi.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        [
            "curl",
            "-fsSL",
            "--connect-timeout",
            "5",
            "--max-time",
            "30",
            "-o",
            str(script),
            "https://get.pulumi.com",
        ],
        capture_output=True,
        check=False,
    )
    if fetched.returncode != 0:
        return None
    installed = subprocess.run(
        [
            "sh",
            str(script),
            "--version",
            PULUMI_VERSION,
            "--install-root",
            str(TOOLS),
            "--no-edit-path",
        ],
        capture_output=True,
        check=False,
        timeout=300,
    )
    binary = TOOLS / "bin" / "pulumi"
    return str(binary) if installed.returncode == 0 and binary.exists() else None


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


def with_cli(cli: str, url: str, api_key: str) -> None:
    shutil.rmtree(STATE, ignore_errors=True)  # the emulator starts empty, so does the stack
    STATE.mkdir()
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{STATE}",
        "PULUMI_CONFIG_PASSPHRASE": "mixpeek-demo",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "MIXPEEK_PULUMI_STATE_DIR": str(STATE / "inflight"),
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def pulumi(*args: str, capture: bool = False) -> str:
        done = subprocess.run(
            [cli, *args, "--stack", "demo", "--non-interactive"],
            cwd=ROOT,
            env=env,
            check=True,
            text=True,
            capture_output=capture,
        )
        return done.stdout if capture else ""

    subprocess.run(
        [cli, "stack", "init", "demo", "--non-interactive"], cwd=ROOT, env=env, check=True
    )
    pulumi("config", "set", "mixpeek:baseUrl", url)
    pulumi("config", "set", "--secret", "mixpeek:apiKey", api_key)
    say("\n== pulumi up ==")
    pulumi("up", "--yes")
    show(json.loads(pulumi("stack", "output", "--json", capture=True)))
    say("\n== pulumi preview --expect-no-changes (a second run changes nothing) ==")
    pulumi("preview", "--expect-no-changes")


def with_engine_stand_in(url: str, api_key: str) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.engine import FakeEngine, ProviderHost, run_program  # the suite's engine stand-in

    say(
        "The Pulumi CLI is not on PATH and could not be installed (no internet access), so the demo "
        "runs the same program through the test suite's engine stand-in instead.\n"
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
            config={"mixpeek:apiKey": api_key, "mixpeek:baseUrl": url},
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
    cli = find_or_install_cli()
    with emulator(api_key) as url:
        if cli is not None:
            say(f"Using the Pulumi CLI at {cli}")
            with_cli(cli, url, api_key)
        else:
            with_engine_stand_in(url, api_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
