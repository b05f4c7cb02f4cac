"""An engine stand-in: drives the SDK's real dynamic-provider host the way `pulumi up` does.

A fast second reading beside the real CLI (``tests/cli``, which runs every example through
Pulumi 3.259.0): tests start exactly what the CLI's ``pulumi-resource-pulumi-python`` shim
starts (``python -u -m pulumi.dynamic``) and act as the Go engine over gRPC: Configure with the whole stack config (secrets wrapped), Check, Diff with old
*outputs*, Create/Update/Read/Delete, secret stripping on the way in (the host answers
``acceptSecrets=False``) and ``annotateSecrets`` on the way out. Programs run under
``pulumi.runtime.set_mocks`` with a monitor that forwards each dynamic resource's exact
registration payload (``__provider`` included) to this engine.

Not emulated: state files and encryption, protect/aliases/ignoreChanges, dependency ordering.
"""

from __future__ import annotations

import os
import random
import runpy
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PROVIDER_KEY = "__provider"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGISTRATIONS = ThreadPoolExecutor(max_workers=4 * 4 * (os.cpu_count() or 1))


def _proto() -> Any:
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    return provider_pb2, provider_pb2_grpc


# ------------------------------------------------------------------------- property helpers


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE


def secret(value: Any) -> dict[str, Any]:
    return value if is_secret(value) else {SECRET_SIG: SECRET_VALUE, "value": value}


def strip_secrets(value: Any) -> Any:
    """What ``MarshalProperties(KeepSecrets=false)`` sends to a provider."""
    if is_secret(value):
        return strip_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def drop_unknowns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_unknowns(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [drop_unknowns(v) for v in value if v != UNKNOWN]
    return value


def annotate_secrets(
    outs: dict[str, Any], ins: Mapping[str, Any], additional: Iterable[str] = ()
) -> dict[str, Any]:
    """A port of the engine's ``annotateSecrets``: outputs keyed like a secret input are secret
    (where both are objects, key by key inside them, as the engine recurses), and so are the
    resource's ``additional_secret_outputs``."""
    result = dict(outs)
    for key, value in ins.items():
        if key not in result:
            continue
        out = result[key]
        if (
            isinstance(out, dict)
            and not is_secret(out)
            and isinstance(value, dict)
            and not is_secret(value)
        ):
            result[key] = annotate_secrets(out, value)
        elif not is_secret(out) and contains_secret(value):
            result[key] = secret(out)
    return {k: secret(v) if k in set(additional) else v for k, v in result.items()}


def contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(props))
    return s


def from_struct(s: struct_pb2.Struct) -> dict[str, Any]:
    data: dict[str, Any] = _ints(json_format.MessageToDict(s))
    return data


def _ints(value: Any) -> Any:
    # Struct carries every number as a double; whole numbers come back as ints, as in the engine.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def plain(props: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs as a test reads them: secrets unwrapped, ``__provider`` dropped."""
    return {k: strip_secrets(v) for k, v in props.items() if k != PROVIDER_KEY}


# ------------------------------------------------------------------------------ the host


class ProviderHost:
    """The real ``python -u -m pulumi.dynamic`` process, started as the CLI's shim starts it."""

    def __init__(
        self,
        *,
        cwd: Path = PROJECT_ROOT,
        project: str = "mixpeek-test",
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        echo: bool = False,
    ) -> None:
        self.echo = echo
        full_env = {**os.environ, "PULUMI_PROJECT": project, **(env or {})}
        self.process = subprocess.Popen(
            [python, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._drains: list[threading.Thread] = []
        self.channel: Any = None
        try:
            self._handshake()
        except BaseException:
            # Stopped and its pipes closed here: left to the garbage collector, each pipe is a
            # ResourceWarning that fails whichever later test is running when it is collected.
            self.close()
            raise

    def _handshake(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        port = b""
        while not port.endswith(b"\n"):
            # Unbuffered: what the host prints next is read from the pipe itself (``_pump``).
            byte = os.read(self.process.stdout.fileno(), 1)
            if not byte:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"the provider host exited before its handshake: {err}")
            port += byte
        self.port = int(port.strip())
        self.diagnostics: list[str] = []
        self._lock = threading.Lock()
        streams = (self.process.stdout, self.process.stderr)
        self._pending = {stream.fileno(): b"" for stream in streams}
        for fd in self._pending:
            os.set_blocking(fd, False)
        self._drains = [
            threading.Thread(target=self._drain, args=(fd,), daemon=True) for fd in self._pending
        ]
        for thread in self._drains:
            thread.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        _, provider_pb2_grpc = _proto()
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        grpc.channel_ready_future(self.channel).result(timeout=30)

    def _drain(self, fd: int) -> None:
        """Keep the host's pipe from filling while nobody asks for its output."""
        while self._pump(fd):
            try:
                select.select([fd], [], [], 0.1)
            except (OSError, ValueError):
                return  # closed: the host is gone

    def _pump(self, fd: int) -> bool:
        """Read what the pipe holds now, under the lock ``output`` takes: what the host wrote
        before an answer it gave is always seen after it (False once the host is gone)."""
        with self._lock:
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    return True
                except OSError:
                    return False
                if not data:
                    return False
                lines = (self._pending[fd] + data).split(b"\n")
                self._pending[fd] = lines.pop()
                for raw in lines:
                    line = raw.decode(errors="replace")
                    self.diagnostics.append(line)
                    if self.echo:
                        print(f"  | {line}", flush=True)  # as the CLI shows provider output

    def output(self) -> str:
        """Everything the host printed so far: what the CLI would show as diagnostics."""
        for fd in self._pending:
            self._pump(fd)
        with self._lock:
            return "\n".join(self.diagnostics)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self._drains:
            thread.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class EngineError(Exception):
    """A step failed the way the CLI reports it: the provider's traceback, last line first."""

    def __init__(self, op: str, name: str, details: str) -> None:
        self.op = op
        self.name = name
        self.details = details
        lines = [line for line in details.strip().splitlines() if line.strip()]
        self.headline = _headline(lines)
        super().__init__(f"{op} of {name} failed: {self.headline}")


def _headline(lines: list[str]) -> str:
    # The traceback's last "ExcType: message" block; its first line is what users read.
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line.startswith(" ") and ":" in line and not line.startswith("Traceback"):
            head = line.split(": ", 1)
            if len(head) == 2 and "." not in head[0].split()[-1][:1]:
                return head[1]
    return lines[-1] if lines else ""


@dataclass
class ResourceState:
    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    additional_secret_outputs: tuple[str, ...] = ()


@dataclass
class Step:
    op: str
    name: str


class FakeEngine:
    """The Go engine's step generator, in miniature, in front of one provider host."""

    def __init__(
        self,
        host: ProviderHost,
        *,
        config: Mapping[str, Any] | None = None,
        secret_keys: Iterable[str] = (),
        stack: str = "dev",
        project: str = "mixpeek-test",
    ) -> None:
        self.host = host
        self.stack = stack
        self.project = project
        self.state: dict[str, ResourceState] = {}
        self.steps: list[Step] = []
        self.pending_deletes: list[ResourceState] = []
        self.diffs: dict[str, Any] = {}
        """The host's last ``DiffResponse`` for each resource name, as the CLI receives it."""
        self._lock = threading.Lock()
        self.configure(config or {}, set(secret_keys))

    # -- protocol

    def configure(self, config: Mapping[str, Any], secret_keys: set[str]) -> None:
        provider_pb2, _ = _proto()
        try:
            self.host.stub.Handshake(provider_pb2.ProviderHandshakeRequest())
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        args = {k: (secret(v) if k in secret_keys else v) for k, v in config.items()}
        variables = {
            f"pulumi-python:config:{k}": str(v) for k, v in config.items() if k not in secret_keys
        }
        response = self.host.stub.Configure(
            provider_pb2.ConfigureRequest(
                variables=variables,
                args=to_struct(args),
                acceptSecrets=True,
                acceptResources=True,
            )
        )
        self.accept_secrets = response.acceptSecrets
        self.host.stub.GetPluginInfo(empty_pb2.Empty())

    def _send(self, props: Mapping[str, Any], *, preview: bool) -> struct_pb2.Struct:
        value: Any = props if self.accept_secrets else strip_secrets(props)
        if not preview:
            value = drop_unknowns(value)
        return to_struct(value)

    def _call(self, op: str, name: str, method: Callable[[Any], Any], request: Any) -> Any:
        try:
            return method(request)
        except grpc.RpcError as exc:
            raise EngineError(op, name, exc.details() or str(exc)) from None

    def urn(self, type_: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def check(
        self,
        urn: str,
        type_: str,
        name: str,
        olds: dict[str, Any],
        news: dict[str, Any],
        preview: bool,
    ) -> dict[str, Any]:
        provider_pb2, _ = _proto()
        response = self._call(
            "check",
            name,
            self.host.stub.Check,
            provider_pb2.CheckRequest(
                urn=urn,
                name=name,
                type=type_,
                olds=self._send(olds, preview=True),
                news=self._send(news, preview=True),
                randomSeed=random.randbytes(32),
            ),
        )
        if response.failures:
            reasons = "; ".join(f"{f.property}: {f.reason}" for f in response.failures)
            raise EngineError("check", name, f"CheckFailure: {reasons}")
        checked = from_struct(response.inputs)
        return annotate_secrets(checked, news)

    # -- steps

    def register(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        *,
        preview: bool = False,
        additional_secret_outputs: Iterable[str] = (),
        delete_before_replace: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        """One resource registration: check, then create / same / update / replace."""
        provider_pb2, _ = _proto()
        stub = self.host.stub
        urn = self.urn(type_, name)
        with self._lock:
            old = self.state.get(urn)
        extra = tuple(additional_secret_outputs)
        news = self.check(urn, type_, name, old.inputs if old else {}, inputs, preview)

        def finish(op: str, id_: str, outs_struct: Any) -> tuple[str, dict[str, Any]]:
            outs = annotate_secrets(from_struct(outs_struct), news, extra)
            new = ResourceState(urn, type_, name, id_, news, outs, extra)
            with self._lock:
                self.state[urn] = new
                self.steps.append(Step(op, name))
            return id_, outs

        def create(op: str) -> tuple[str, dict[str, Any]]:
            if preview:
                self.steps.append(Step(op, name))
                return "", news
            response = self._call(
                "create",
                name,
                stub.Create,
                provider_pb2.CreateRequest(
                    urn=urn, name=name, type=type_, properties=self._send(news, preview=False)
                ),
            )
            assert response.id, "the provider returned an empty id from create"
            return finish(op, response.id, response.properties)

        if old is None:
            return create("create")

        changed, replaces, first_delete = self._changes(old, news)
        if not changed:
            with self._lock:
                old.inputs = news
                self.steps.append(Step("same", name))
            return old.id, old.outputs
        if replaces:
            if preview:
                self.steps.append(Step("replace", name))
                return old.id, news
            if delete_before_replace or first_delete:
                self._delete(old)
                return create("replace")
            with self._lock:
                self.pending_deletes.append(old)
            return create("replace")
        if preview:
            self.steps.append(Step("update", name))
            return old.id, news
        response = self._call(
            "update",
            name,
            stub.Update,
            provider_pb2.UpdateRequest(
                id=old.id,
                urn=urn,
                name=name,
                type=type_,
                olds=self._send(old.outputs, preview=False),
                news=self._send(news, preview=False),
                old_inputs=self._send(old.inputs, preview=False),
            ),
        )
        return finish("update", old.id, response.properties)

    def _changes(self, old: ResourceState, news: dict[str, Any]) -> tuple[bool, list[str], bool]:
        """What the provider's Diff says changed, as the engine reads it: whether anything
        did, what replaces, and whether the old one must go first."""
        provider_pb2, _ = _proto()
        diff = self._call(
            "diff",
            old.name,
            self.host.stub.Diff,
            provider_pb2.DiffRequest(
                id=old.id,
                urn=old.urn,
                name=old.name,
                type=old.type,
                olds=self._send(old.outputs, preview=True),
                news=self._send(news, preview=True),
                old_inputs=self._send(old.inputs, preview=True),
            ),
        )
        with self._lock:
            self.diffs[old.name] = diff
        if diff.changes == provider_pb2.DiffResponse.DIFF_UNKNOWN:
            # The engine falls back to comparing old and new inputs, __provider included.
            return strip_secrets(old.inputs) != strip_secrets(news), [], False
        changed = diff.changes == provider_pb2.DiffResponse.DIFF_SOME
        return changed, list(diff.replaces), diff.deleteBeforeReplace

    def _delete(self, res: ResourceState) -> None:
        provider_pb2, _ = _proto()
        self._call(
            "delete",
            res.name,
            self.host.stub.Delete,
            provider_pb2.DeleteRequest(
                id=res.id,
                urn=res.urn,
                name=res.name,
                type=res.type,
                properties=self._send(res.outputs, preview=False),
                old_inputs=self._send(res.inputs, preview=False),
            ),
        )
        with self._lock:
            if self.state.get(res.urn) is res:
                del self.state[res.urn]
            self.steps.append(Step("delete", res.name))

    def finish_update(self, registered: set[str]) -> None:
        """After a program ran: delete replaced resources, then the ones it no longer declares."""
        while self.pending_deletes:
            self._delete(self.pending_deletes.pop(0))
        for res in reversed(list(self.state.values())):
            if res.urn not in registered:
                self._delete(res)

    def refresh(self) -> None:
        """``pulumi refresh``: Read each resource; an empty id removes it from state."""
        provider_pb2, _ = _proto()
        for res in list(self.state.values()):
            response = self._call(
                "read",
                res.name,
                self.host.stub.Read,
                provider_pb2.ReadRequest(
                    id=res.id,
                    urn=res.urn,
                    name=res.name,
                    type=res.type,
                    properties=self._send(res.outputs, preview=False),
                    inputs=self._send(res.inputs, preview=False),
                ),
            )
            with self._lock:
                if not response.id:
                    del self.state[res.urn]
                    self.steps.append(Step("refresh-delete", res.name))
                    continue
                res.outputs = annotate_secrets(
                    from_struct(response.properties), res.inputs, res.additional_secret_outputs
                )
                if response.HasField("inputs"):
                    res.inputs = annotate_secrets(from_struct(response.inputs), res.inputs)
                self.steps.append(Step("refresh", res.name))

    def destroy(self) -> None:
        for res in reversed(list(self.state.values())):
            self._delete(res)

    def find(self, name: str) -> ResourceState:
        for res in self.state.values():
            if res.name == name:
                return res
        raise KeyError(name)

    def outputs(self, name: str) -> dict[str, Any]:
        return plain(self.find(name).outputs)

    def steps_since(self, mark: int) -> list[tuple[str, str]]:
        return [(s.op, s.name) for s in self.steps[mark:]]


# -------------------------------------------------------------------------------- programs


@dataclass
class ProgramResult:
    outputs: dict[str, Any]
    steps: list[tuple[str, str]]
    error: EngineError | None = None
    stack_outputs_secret: set[str] = field(default_factory=set)


def run_program(
    engine: FakeEngine,
    program: Callable[[], object] | Path,
    *,
    config: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProgramResult:
    """Run a Pulumi program (a function or a ``__main__.py``) as ``pulumi up`` would.

    Raises ``EngineError`` when a step fails, after the run ends, as the CLI reports it.
    """
    from pulumi.runtime import mocks, settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.sync_await import _ensure_event_loop

    from tests.monitor import EngineBackedMonitor

    mark = len(engine.steps)
    monitor = EngineBackedMonitor(engine, preview=preview, stack_references=stack_references or {})
    cfg = {k: str(v) for k, v in (config or {}).items()}
    set_all_config(cfg, list(secret_keys))
    settings.ROOT.set(None)  # a fresh Stack per run, as each `pulumi up` has
    mocks.set_mocks(
        monitor.mocks, project=engine.project, stack=engine.stack, preview=preview, monitor=monitor
    )
    root = settings.get_root_resource()
    old_cwd = os.getcwd()
    # As the language host does: registrations wait on the engine in threads, parallel * 4 of
    # them (the engine's default parallel is 4 per CPU).
    _ensure_event_loop().set_default_executor(REGISTRATIONS)  # type: ignore[no-untyped-call]

    def body() -> None:
        if isinstance(program, Path):
            os.chdir(program.parent)
            runpy.run_path(str(program), run_name="__main__")
        else:
            program()

    failure: BaseException | None = None
    try:
        mocks.test(body)()  # type: ignore[no-untyped-call]
    except BaseException as exc:
        failure = exc
    finally:
        os.chdir(old_cwd)
    if monitor.errors:
        raise monitor.errors[0]
    if failure is not None:
        raise failure
    if not preview:
        engine.finish_update(monitor.registered)
    outputs: dict[str, Any] = {}
    secret_names: set[str] = set()
    stack_outputs = getattr(root, "outputs", {}) or {}
    for key, value in stack_outputs.items():
        resolved, is_secret_output = _resolve(value)
        outputs[key] = resolved
        if is_secret_output:
            secret_names.add(key)
    return ProgramResult(outputs, engine.steps_since(mark), None, secret_names)


def _resolve(value: Any) -> tuple[Any, bool]:
    import pulumi
    from pulumi.runtime.sync_await import _sync_await

    if isinstance(value, pulumi.Output):
        resolved = _sync_await(value.future())
        secret_flag = bool(_sync_await(value.is_secret()))
        return resolved, secret_flag
    return value, False


@dataclass
class Stack:
    """A stack: the emulator, the real provider host and the engine stand-in, wired together."""

    emulator: Any
    host: ProviderHost
    engine: FakeEngine
    workdir: Path


def open_stack(
    emulator: Any, tmp_path: Path, *, env: Mapping[str, str] | None = None, **config: str
) -> Stack:
    host = ProviderHost(env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path / "inflight"), **(env or {})})
    cfg = {"mixpeek:apiKey": emulator.api_key, "mixpeek:baseUrl": emulator.url, **config}
    try:
        engine = FakeEngine(host, config=cfg, secret_keys={"mixpeek:apiKey"})
    except BaseException:
        host.close()  # the caller never gets the stack it would close
        raise
    return Stack(emulator, host, engine, tmp_path)
