"""One Pulumi stack driven through the real CLI: the runner `make demo` and the CLI tests share.

`up` and `preview` run the program the way the CLI can here: as `pulumi up` of the project folder
when its language host sits beside the CLI (always so for Pulumi YAML), and otherwise, for Python
and Node.js programs, as an inline program served from a child process through the Automation API
(which needs no language host). Everything else (`config set`, `refresh`, `destroy`, `import`,
`stack export`, `stack output`, `plugin install`) is the plain `pulumi` command run in the project
folder, as a user types it. State lives in a local file backend.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.pulumi_cli import ROOT, Cli

LineSink = Callable[[str], None]
SUMMARY_MARK = "::mixpeek-summary::"


@dataclass
class CliResult:
    """What one CLI command did: whether it succeeded and every line it printed, in order."""

    verb: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


class CliStack:
    """A stack of the project in ``work_dir``, with its state under ``backend``."""

    def __init__(
        self,
        cli: Cli,
        work_dir: Path,
        stack: str,
        *,
        backend: Path | str,
        passphrase: str,
        env: Mapping[str, str] | None = None,
        program: Path | None = None,
        echo: LineSink | None = None,
        home: Path | None = None,
    ) -> None:
        self.cli = cli
        self.work_dir = work_dir
        self.stack = stack
        self.echo = echo
        self.runtime = _manifest_value(work_dir, "runtime") or "python"
        self.program = program or _program_of(work_dir, self.runtime)
        # Python and Node.js programs need a language host the Go proxy does not serve; YAML's
        # is built with the CLI.
        self.inline = self.runtime in INLINE and not cli.has(f"pulumi-language-{self.runtime}")
        # A folder is a local file backend; a URL (s3://...) a backend other runners share,
        # with this runner's PULUMI_HOME in ``home``.
        if isinstance(backend, Path):
            backend.mkdir(parents=True, exist_ok=True)
            url, home = f"file://{backend}", home or backend / ".pulumi-home"
        else:
            url = backend
        if home is None:
            raise ValueError("a shared backend needs the runner's own PULUMI_HOME")
        self.env = {
            **os.environ,
            "PULUMI_BACKEND_URL": url,
            "PULUMI_CONFIG_PASSPHRASE": passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_HOME": str(home),
            # The dynamic-provider shim runs this interpreter when the project names no venv.
            "PULUMI_PYTHON_CMD": sys.executable,
            "PATH": f"{cli.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            **(env or {}),
        }
        self.printed: list[str] = []  # every line of every command, for secret scans
        self.run("stack", "select", "--create")

    # ------------------------------------------------------------------------- plain CLI

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, stack: bool = True
    ) -> CliResult:
        """``pulumi <args> --stack <stack>`` in the project folder, its lines streamed."""
        return self._run(args, stdin=stdin, check=check, stack=stack)

    def _json(self, *args: str) -> Any:
        """What a ``--json`` command prints on stdout, read apart from its stderr (where a
        backend's own warnings go)."""
        return json.loads(self._run(args, check=True, stack=True, apart=True).output)

    def _run(
        self,
        args: tuple[str, ...],
        *,
        stdin: str | None = None,
        check: bool,
        stack: bool,
        apart: bool = False,
    ) -> CliResult:
        scope = ["--stack", self.stack] if stack else []
        command = [str(self.cli.pulumi), *args, *scope, "--non-interactive"]
        result = CliResult(args[0], ok=False)
        with subprocess.Popen(
            command,
            cwd=self.work_dir,
            env=self.env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if apart else subprocess.STDOUT,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            if proc.stdin is not None:
                proc.stdin.write(stdin or "")
                proc.stdin.close()
            for line in proc.stdout:
                self._line(result, line.rstrip("\n"))
            errors = proc.stderr.read() if proc.stderr is not None else ""
            self.printed.extend(errors.splitlines())
            result.ok = proc.wait() == 0
        if check and not result.ok:
            raise RuntimeError(f"`pulumi {' '.join(args)}` failed:\n{result.output}\n{errors}")
        return result

    def _line(self, result: CliResult, line: str) -> None:
        result.lines.append(line)
        self.printed.append(line)
        if self.echo is not None:
            self.echo(line)

    def set_config(self, key: str, value: str, *, secret: bool = False) -> None:
        """``pulumi config set [--secret] key``, the value on stdin (never on a command line)."""
        self.run("config", "set", key, *(["--secret"] if secret else ["--plaintext"]), stdin=value)

    def install_plugin(self, kind: str, name: str, version: str, path: Path) -> None:
        """``pulumi plugin install <kind> <name> <version> --file <path>`` into this stack's
        PULUMI_HOME, as the README tells users to install the native provider."""
        self.run("plugin", "install", kind, name, version, "--file", str(path), stack=False)

    def refresh(self) -> CliResult:
        result = self.run("refresh", "--yes", "--skip-preview", check=False)
        result.summary = self.last_changes() if result.ok else {}
        return result

    def destroy(self) -> CliResult:
        result = self.run("destroy", "--yes", "--skip-preview", check=False)
        result.summary = self.last_changes() if result.ok else {}
        return result

    def export(self) -> dict[str, Any]:
        """``pulumi stack export`` (secrets stay encrypted)."""
        data: dict[str, Any] = self._json("stack", "export")
        return data

    def outputs(self) -> dict[str, Any]:
        data: dict[str, Any] = self._json("stack", "output", "--json")
        return data

    def last_changes(self) -> dict[str, int]:
        history = self._json("stack", "history", "--json")
        changes: dict[str, int] = history[0].get("resourceChanges") or {} if history else {}
        return changes

    def resources(self) -> dict[str, dict[str, Any]]:
        """The state's custom resources by name: type, id, inputs and outputs."""
        deployment = self.export().get("deployment", {})
        return {
            r["urn"].rsplit("::", 1)[-1]: r
            for r in deployment.get("resources") or []
            if r.get("custom") and not r["type"].startswith("pulumi:providers:")
        }

    # ------------------------------------------------------------------ running the program

    def up(self, *, parallel: int | None = None, refresh: bool = False) -> CliResult:
        """``pulumi up``; ``parallel`` is the engine's ``--parallel`` (default 4 per CPU), and
        ``refresh`` reads the service first (``--refresh``)."""
        return self._program("up", parallel=parallel, refresh=refresh)

    def preview(self, *, expect_no_changes: bool = False, diff: bool = False) -> CliResult:
        """``pulumi preview``; ``diff`` adds ``--diff`` (every changed property's values)."""
        return self._program("preview", expect_no_changes=expect_no_changes, diff=diff)

    def _program(
        self,
        verb: str,
        *,
        expect_no_changes: bool = False,
        parallel: int | None = None,
        diff: bool = False,
        refresh: bool = False,
    ) -> CliResult:
        if not self.inline:
            flags = ["--yes", "--skip-preview"] if verb == "up" else []
            if refresh:
                flags.append("--refresh")
            if expect_no_changes:
                flags.append("--expect-no-changes")
            if diff:
                flags.append("--diff")
            if parallel:
                flags += ["--parallel", str(parallel)]
            result = self.run(verb, *flags, check=False)
            if result.ok and verb == "up":
                result.summary = self.last_changes()
            return result
        return self._inline(verb, expect_no_changes=expect_no_changes, parallel=parallel, diff=diff)

    def _inline(
        self, verb: str, *, expect_no_changes: bool, parallel: int | None, diff: bool = False
    ) -> CliResult:
        """The program served by a child Python process through the Automation API, as the
        language host would serve it from its own process; its CLI output is streamed back."""
        result = CliResult(verb, ok=False)
        command = [*INLINE[self.runtime], verb, str(self.work_dir)]
        command += [self.stack, str(self.program), str(self.cli.root)]
        if expect_no_changes:
            command.append("--expect-no-changes")
        if parallel:
            command.append(f"--parallel={parallel}")
        if diff:
            command.append("--diff")
        # The stack's own PYTHONPATH (its env, else this process's) decides which code the
        # program imports, as it does for the provider processes the CLI starts.
        path = self.env.get("PYTHONPATH", "")
        env = {**self.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), path]))}
        with subprocess.Popen(
            command,
            cwd=self.program.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(SUMMARY_MARK):
                    result.summary = json.loads(line[len(SUMMARY_MARK) :])
                else:
                    self._line(result, line.rstrip("\n"))
            result.ok = proc.wait() == 0
        return result


INLINE = {
    "python": [sys.executable, "-m", "scripts.pulumi_stack"],
    "nodejs": ["node", str(ROOT / "scripts" / "pulumi_inline.js")],
    # A Go program serves itself through the Go Automation API (examples/native-go/main.go).
    "go": ["go", "run", "."],
}
"""How each runtime's program is served inline: this module's ``serve_inline``, its Node.js
twin (which finds ``@pulumi/pulumi`` through NODE_PATH), or the Go program itself."""


def _program_of(work_dir: Path, runtime: str) -> Path:
    """The program file: for Python, Pulumi.yaml's ``main:`` folder (or the project folder) +
    __main__.py; for Node.js, the compiled ``bin/index.js``; else Pulumi.yaml itself."""
    if runtime == "python":
        return (work_dir / _manifest_value(work_dir, "main") / "__main__.py").resolve()
    if runtime == "nodejs":
        return (work_dir / "bin" / "index.js").resolve()
    return work_dir / "Pulumi.yaml"


def _manifest_value(work_dir: Path, key: str) -> str:
    """A top-level key of Pulumi.yaml: ``key: value``, or a block's ``name:`` (``runtime:``)."""
    lines = (work_dir / "Pulumi.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{key}:"):
            value = line.split(":", 1)[1].strip()
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not value and following.startswith("name:"):
                value = following.split(":", 1)[1].strip()
            return value
    return ""


def serve_inline(argv: list[str]) -> int:
    """The child side of an inline run: ``verb work_dir stack program cli_root [flags]``."""
    from pulumi import automation as auto

    verb, work_dir, stack_name, program, cli_root = argv[:5]
    project = _manifest_value(Path(work_dir), "name")

    def body() -> None:
        runpy.run_path(program, run_name="__main__")

    def echo(line: str) -> None:
        print(line.rstrip("\n"), flush=True)

    workspace = auto.LocalWorkspaceOptions(
        work_dir=work_dir,
        pulumi_home=os.environ.get("PULUMI_HOME"),
        pulumi_command=auto.PulumiCommand(root=cli_root, skip_version_check=True),
    )
    stack = auto.select_stack(
        stack_name=stack_name, project_name=project, program=body, opts=workspace
    )
    options: dict[str, Any] = {"on_output": echo, "on_error": echo, "color": "never"}
    if "--expect-no-changes" in argv:
        options["expect_no_changes"] = True
    if "--diff" in argv:
        options["diff"] = True
    for flag in argv:
        if flag.startswith("--parallel="):
            options["parallel"] = int(flag.split("=", 1)[1])
    try:
        if verb == "up":
            changes = stack.up(show_secrets=False, **options).summary.resource_changes or {}
        else:
            changes = stack.preview(**options).change_summary
    except auto.errors.CommandError:
        return 1  # the CLI's own output, already echoed, says why
    print(SUMMARY_MARK + json.dumps(dict(changes)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve_inline(sys.argv[1:]))
