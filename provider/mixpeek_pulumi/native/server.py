"""``pulumi-resource-mixpeek``: the provider protocol served on an asyncio gRPC server.

Each verb decodes the wire properties into the typed models, runs the deploy layer's step for
the resource's kind in a worker thread (the steps block on HTTP and waits), and encodes the typed
state back. Calls are bounded only by the engine's ``--parallel``. What the dynamic host cannot
do is done here: the engine's ``customTimeouts`` become the operation's deadline, ``Cancel``
ends every wait at once, a deploy left under way is returned as a partial failure
(``ErrorResourceInitFailed``) so the stack's own state keeps its id, ``Read`` of an id alone is
an import, and progress goes to the engine's log under the resource's URN.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, Final, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, empty_pb2
from google.rpc import status_pb2

from .._version import __version__
from ..config import ProviderConfig, base_url_problem
from ..deadline import Cancellation
from ..errors import DeployError, MixpeekError, redact
from ..kinds.base import AnyKind, check_inputs
from ..kinds.diffs import Failure, split_unknowns, validate_inputs
from ..kinds.functions import FUNCTIONS
from ..kinds.registry import KINDS
from ..kinds.spec import Inputs, State, change_of, secret_paths
from ..run.context import READ_SECONDS, Context, failure
from ..run.progress import write_line
from . import launch, lifeline, wire
from .protos import engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2
from .protos import provider_pb2_grpc as rpc
from .schema import PACKAGE, camel, input_fields, schema_json, snake

T = TypeVar("T")
MAX_WORKERS: Final = 256
"""Threads for blocking steps; the engine's ``--parallel`` is the real bound."""


class EngineLog:
    """The engine's log service: lines shown by the CLI under a resource."""

    def __init__(self, address: str | None) -> None:
        channel = grpc.insecure_channel(address, options=lifeline.LOOPBACK) if address else None
        self._stub = engine_pb2_grpc.EngineStub(channel) if channel else None

    def sink(self, urn: str) -> Callable[[str], None]:
        def write(line: str) -> None:
            if self._stub is None:
                write_line(redact(line))
                return
            request = engine_pb2.LogRequest(severity=engine_pb2.INFO, message=redact(line), urn=urn)
            with suppress(grpc.RpcError):  # the engine is going away; the deploy goes on
                self._stub.Log(request, timeout=10)

        return write


class Call:
    """One request's resource: its kind, name and URN, from what the engine sent, and where
    the engine marked its properties secret."""

    def __init__(self, urn: str, type_: str = "", name: str = "") -> None:
        parts = urn.split("::")
        self.urn = urn
        self.token = type_ or (parts[2].split("$")[-1] if len(parts) > 3 else "")
        self.name = name or parts[-1]
        kind = KINDS.get(self.token.removeprefix(f"{PACKAGE}:index:"))
        if kind is None or not self.token.startswith(f"{PACKAGE}:index:"):
            raise LookupError(f"The Mixpeek provider has no resource type {self.token!r}.")
        self.kind: AnyKind = kind
        self.codec = wire.Codec(kind)
        # Where the kind keeps secrets (a password) is secret whatever the program marked.
        self.secrets: set[wire.Path] = {
            tuple(self.codec.name(path).split(".")) for path in secret_paths(kind.inputs)
        }

    def model(self, wire_props: Mapping[str, Any]) -> dict[str, Any]:
        """The engine's camelCase properties as the models name them, secrets unwrapped
        (their values hidden from every line and error from now on)."""
        plain, secret = wire.unwrap(wire_props)
        self.secrets |= secret
        return self.codec.model(plain)

    def props(self, wire_props: Mapping[str, Any]) -> dict[str, Any]:
        """``model``, with the resource's name."""
        return {**self.model(wire_props), "resource_name": self.name}

    def inputs(self, wire_props: Mapping[str, Any]) -> Inputs:
        """The properties parsed into the kind's inputs."""
        inputs: Inputs = self.kind.inputs.parse(self.props(wire_props))
        return inputs

    def state(self, wire_props: Mapping[str, Any]) -> State:
        """The properties loaded into the kind's state."""
        state: State = self.kind.state.load(self.props(wire_props))
        return state

    def outputs(self, state: State) -> Any:
        """The state on the wire, secret wherever its inputs were."""
        return wire.dump(wire.wrap(self.codec.wire(state.to_outputs()), self.secrets))


class NativeProvider(rpc.ResourceProviderServicer):
    """The provider protocol over each kind's verbs (``kinds.registry``)."""

    def __init__(self, engine: EngineLog) -> None:
        self.engine = engine
        self.config = ProviderConfig.resolve(None)
        self.cancelled = Cancellation()  # shared by every operation: one Cancel reaches all
        self.pool = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="mixpeek")

    # ------------------------------------------------------------------- the provider

    async def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=__version__)

    async def GetSchema(self, request: Any, context: Any) -> Any:
        return provider_pb2.GetSchemaResponse(schema=schema_json())

    async def CheckConfig(self, request: Any, context: Any) -> Any:
        news = wire.load(request.news)
        url = news.get("baseUrl")
        problem = base_url_problem(url) if isinstance(url, str) and url != wire.UNKNOWN else None
        failures = (
            [provider_pb2.CheckFailure(property="baseUrl", reason=problem)] if problem else []
        )
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    async def DiffConfig(self, request: Any, context: Any) -> Any:
        # A new endpoint or key applies to the next operation; nothing is replaced for it.
        olds, news = wire.load(request.olds), wire.load(request.news)
        changed = sorted(k for k in set(olds) | set(news) if olds.get(k) != news.get(k))
        return _diff_response(changed)

    async def Configure(self, request: Any, context: Any) -> Any:
        args = {k: wire.reveal(v) for k, v in wire.load(request.args).items()}
        self.config = ProviderConfig.resolve(lambda key: args.get(key.partition(":")[2]))
        # Secrets arrive marked, so the provider knows which values to keep out of every line
        # and error, and hands them back marked (the engine re-marks nothing it accepted).
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=False)

    async def Cancel(self, request: Any, context: Any) -> Any:
        self.cancelled.set()  # every wait ends now; deploys under way are kept as partial state
        return empty_pb2.Empty()

    # ------------------------------------------------------------------ the functions

    async def Invoke(self, request: Any, context: Any) -> Any:
        """A function (``getApp``): its arguments checked (failures come back as the
        engine's check failures, named as the program spells them), then one read."""
        name = request.tok.removeprefix(f"{PACKAGE}:index:")
        spec = FUNCTIONS.get(name) if request.tok.startswith(f"{PACKAGE}:index:") else None
        if spec is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"The Mixpeek provider has no function {request.tok!r}.",
            )
            raise AssertionError("unreachable")
        plain, _ = wire.unwrap(wire.load(request.args))
        args = {snake(k): v for k, v in plain.items() if v is not None}
        parsed, failures = validate_inputs(spec.args, args, set())
        if failures or parsed is None:
            return provider_pb2.InvokeResponse(
                failures=[
                    provider_pb2.CheckFailure(property=camel(f.field), reason=redact(f.reason))
                    for f in failures
                ]
            )

        def run() -> Any:
            with Context.open(
                name,
                name,
                config=self.config,
                say=self.engine.sink(""),
                subject=parsed,
                seconds=READ_SECONDS,
                cancel=self.cancelled,
            ) as ctx:
                found = spec.run(ctx, parsed)
            values = {camel(k): v for k, v in found.model_dump(mode="json").items()}
            return provider_pb2.InvokeResponse(**{"return": wire.dump(values)})

        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, run)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one message
            shown = exc if isinstance(exc, MixpeekError) else failure(exc, name, name)
            message = redact(str(shown))
        await context.abort(grpc.StatusCode.UNKNOWN, message)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ the resources

    async def Check(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        olds, news = wire.load(request.olds), wire.load(request.news)
        return await self._run(context, call, lambda: self._check(call, olds, news))

    def _check(self, call: Call, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        known, unknown = split_unknowns(call.model(news), wire.is_unknown)
        placeholder = known.get(call.kind.path) == import_placeholder(call.kind)
        if _imported(call, olds, news):
            unknown.add(call.kind.path)  # an import knows no local path; the program will
        known["resource_name"] = call.name
        computed, failures = check_inputs(
            self.config, call.kind, call.model(olds), known, unknown, cancel=self.cancelled
        )
        if placeholder and call.kind.path not in unknown:
            failures = [f for f in failures if f.field != call.kind.path]
            failures.append(Failure(call.kind.path, _placeholder_reason(call.kind)))
        inputs = input_fields(call.kind)
        for key in sorted(k for k in news if call.codec.to_model.get(k) not in inputs):
            failures.append(Failure(key, f"{key} is not an input of {call.kind.name}."))
        checked = {k: v for k, v in news.items() if call.codec.to_model.get(k) not in computed}
        return provider_pb2.CheckResponse(
            inputs=wire.dump(wire.wrap(checked | call.codec.wire(computed), call.secrets)),
            failures=[
                provider_pb2.CheckFailure(
                    property=call.codec.name(f.field), reason=redact(call.codec.words(f.reason))
                )
                for f in failures
            ],
        )

    async def Diff(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        olds, news = wire.load(request.olds), wire.load(request.news)
        known, unknown = split_unknowns(call.model(news), wire.is_unknown)
        known["resource_name"] = call.name
        diff = await self._run(
            context, call, lambda: call.kind.diff(call.state(olds), known, unknown)
        )
        if diff.notes:
            say = self.engine.sink(call.urn)
            await asyncio.get_running_loop().run_in_executor(
                self.pool, lambda: [say(note) for note in diff.notes]
            )
        return _diff_response(
            call.codec.names(diff.changes),
            call.codec.names(diff.replaces),
            {call.codec.name(k): v for k, v in diff.kinds().items()},
            set(call.codec.names(diff.outputs)),
        )

    async def Create(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        wire_props = wire.load(request.properties)

        def create() -> Any:
            inputs = call.inputs(wire_props)
            with self._context(call, inputs, request.timeout, "create") as ctx:
                state = call.kind.create(ctx, inputs)
            return provider_pb2.CreateResponse(id=state.resource_id, properties=call.outputs(state))

        return await self._run(context, call, create, inputs=request.properties)

    async def Update(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        olds, news = wire.load(request.olds), wire.load(request.news)

        def update() -> Any:
            old, inputs = call.state(olds), call.inputs(news)
            with self._context(call, inputs, request.timeout, "update") as ctx:
                state = call.kind.update(ctx, old, inputs)
            return provider_pb2.UpdateResponse(properties=call.outputs(state))

        return await self._run(context, call, update, inputs=request.news)

    async def Read(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        props, inputs = wire.load(request.properties), wire.load(request.inputs)
        return await self._run(context, call, lambda: self._read(call, request.id, props, inputs))

    def _read(self, call: Call, id_: str, props: dict[str, Any], inputs: dict[str, Any]) -> Any:
        if not props:  # `pulumi import`: only the id is known
            with self._context(call, Inputs(), READ_SECONDS, "read") as ctx:
                found = call.kind.import_(ctx, id_)
            if found is None:
                return provider_pb2.ReadResponse()
            return provider_pb2.ReadResponse(
                id=id_,
                properties=call.outputs(found),
                inputs=wire.dump(wire.wrap(_import_inputs(call, found), call.secrets)),
            )
        state = call.state(props)
        with self._context(call, state, READ_SECONDS, "read") as ctx:
            now = call.kind.read(ctx, state)
        if now is None:
            return provider_pb2.ReadResponse()  # gone at the service: the engine drops it
        return provider_pb2.ReadResponse(
            id=id_,
            properties=call.outputs(now),
            inputs=wire.dump(wire.wrap(inputs or _import_inputs(call, now), call.secrets)),
        )

    async def Delete(self, request: Any, context: Any) -> Any:
        call = await self._call(context, request.urn, request.type, request.name)
        props = wire.load(request.properties)

        def delete() -> Any:
            state = call.state(props)
            with self._context(call, state, request.timeout, "delete") as ctx:
                call.kind.delete(ctx, state)
            return empty_pb2.Empty()

        return await self._run(context, call, delete)

    # ------------------------------------------------------------------------ plumbing

    @contextmanager
    def _context(self, call: Call, subject: object, seconds: float, verb: str) -> Iterator[Context]:
        """One call's context: the engine's timeout for the verb when it sent one
        (``customTimeouts``), its lines in the engine's log under the resource (redacted
        there), the run's Cancel."""
        limit = seconds if seconds and seconds > 0 else None
        named = f"customTimeouts.{verb}={seconds:g}s" if limit and verb != "read" else ""
        with Context.open(
            call.kind.name,
            call.name,
            config=self.config,
            say=self.engine.sink(call.urn),
            subject=subject,
            seconds=limit,
            timeout_name=named,
            cancel=self.cancelled,
        ) as ctx:
            yield ctx

    async def _call(self, context: Any, urn: str, type_: str, name: str) -> Call:
        try:
            return Call(urn, type_, name)
        except LookupError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # abort raises; this line is for type checkers

    async def _run(
        self, context: Any, call: Call, work: Callable[[], T], *, inputs: Any = None
    ) -> T:
        """``work`` in a worker thread; a failure becomes one gRPC error headed by the
        resource, and a deploy left under way becomes a partial failure with its state."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, work)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one message
            error = failure(exc, call.kind.name, call.name)
        partial = error.partial if isinstance(error, DeployError) else None
        message = call.codec.words(str(error))
        await _abort(context, message, call, partial, inputs if partial is not None else None)


async def _abort(
    context: Any, message: str, call: Call, partial: State | None = None, inputs: Any = None
) -> NoReturn:
    """End the call with ``message``; with ``partial``, as ``ErrorResourceInitFailed``, which
    makes the engine keep the resource (its id and state) in the stack and retry it next run."""
    message = redact(message)
    if partial is None:
        await context.abort(grpc.StatusCode.UNKNOWN, message)
        raise AssertionError("unreachable")
    detail = any_pb2.Any()
    detail.Pack(
        provider_pb2.ErrorResourceInitFailed(
            id=partial.resource_id,
            properties=call.outputs(partial),
            inputs=inputs,
            reasons=[message],
        )
    )
    status = status_pb2.Status(
        code=grpc.StatusCode.UNKNOWN.value[0], message=message, details=[detail]
    )
    await context.abort(
        grpc.StatusCode.UNKNOWN,
        message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )
    raise AssertionError("unreachable")


PROPERTY_DIFF: Final = {
    "update": provider_pb2.PropertyDiff.UPDATE,
    "replace": provider_pb2.PropertyDiff.UPDATE_REPLACE,
}


def _diff_response(
    changed: list[str],
    replaces: list[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    outputs: set[str] | frozenset[str] = frozenset(),
) -> Any:
    """The engine's diff: the changed properties, and for each whether it updates or
    replaces (``detailedDiff``), so the CLI names them (``[diff: ~bundle]``) even when the
    value it compares (a folder's path) reads the same."""
    kinds = kinds if kinds is not None else dict.fromkeys(changed, "update")
    return provider_pb2.DiffResponse(
        changes=provider_pb2.DiffResponse.DIFF_SOME
        if changed
        else provider_pb2.DiffResponse.DIFF_NONE,
        diffs=changed,
        replaces=replaces or [],
        deleteBeforeReplace=False,  # a new deploy or plugin serves before the old one goes
        detailedDiff={
            key: provider_pb2.PropertyDiff(kind=PROPERTY_DIFF[kind], inputDiff=key not in outputs)
            for key, kind in kinds.items()
        },
        hasDetailedDiff=True,
    )


def import_placeholder(kind: AnyKind) -> str:
    """What an import writes for the local path it cannot know: the generated program says
    what to put there."""
    noun = "build folder or .zip" if kind.path == "bundle" else "plugin folder or .zip"
    return f"<the {noun} this {kind.name} was deployed from>"


def _placeholder_reason(kind: AnyKind) -> str:
    return (
        f"{kind.path} still holds what `pulumi import` wrote, {import_placeholder(kind)!r}: "
        f"put the path of the {kind.path} deployed there (its content is compared with "
        "what is live, so the same files show no change)."
    )


def _imported(call: Call, olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    """The engine's check of what an import read: the same inputs twice, with the path
    absent or the import's placeholder."""
    path = call.codec.name(call.kind.path) if call.kind.path else ""
    if not (olds and olds == news and path):
        return False
    return path not in news or news[path] == import_placeholder(call.kind)


def _import_inputs(call: Call, state: State) -> dict[str, Any]:
    """What an imported resource's program must say: the identity and what differs from the
    defaults, and for the local path, which only the program knows, a placeholder saying
    what to put there. Computed values (a digest) are no inputs: they would fail ``check``."""
    model = call.kind.inputs
    values = state.model_dump(mode="json")
    chosen = {
        name: values[name]
        for name, field in model.model_fields.items()
        if name in values
        and name != call.kind.path
        and change_of(field) != "computed"
        and values[name] is not None
        and (field.is_required() or values[name] != field.get_default(call_default_factory=True))
    }
    if call.kind.path:
        chosen[call.kind.path] = import_placeholder(call.kind)
    return call.codec.wire({k: v for k, v in chosen.items() if k in call.codec.to_wire})


def provider(argv: list[str]) -> NativeProvider:
    """The provider the plugin serves (``launch`` builds it once the port is printed, and ties
    it to the engine's life), logging to the engine at the address in ``argv``."""
    return NativeProvider(EngineLog(launch.engine_address(argv)))


HELP: Final = f"""\
usage: pulumi-resource-mixpeek [--version | --schema | --help]

The Mixpeek resource provider plugin for Pulumi, version {__version__}. The Pulumi engine
starts it (with the engine's address as its argument) and talks to it over gRPC; you do not
run it yourself. Install it with

  pulumi plugin install resource mixpeek {__version__} --file pulumi-resource-mixpeek-v{__version__}-<os>-<arch>.tar.gz

or let the engine download it (the package's pluginDownloadURL).

options:
  -h, --help  show this message and exit
  --version   print the plugin's version and exit
  --schema    print the Pulumi package schema (JSON) and exit
"""


def describe(args: list[str]) -> None:
    """What the plugin prints without serving: the schema (``--schema``) or the help."""
    sys.stdout.write(schema_json() if args[:1] == ["--schema"] else HELP)


def main(argv: list[str] | None = None) -> None:
    """The plugin's entry point, ``launch.main`` (kept here for those who import it)."""
    launch.main(argv)
