"""Every fault at every step it can hit: each resource succeeds or fails with one clear sentence,
never deploys twice for one intended change, and the next `pulumi up` converges.

The run is recorded as docs/reliability.md (`make reliability` rewrites it; `make test` checks
that the committed table still lists every case).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc
import pulumi
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi import (
    App,
    AppDeploy,
    AppDomain,
    AppDomainVerification,
    AppPromotion,
    PluginDeployment,
)
from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle, start_emulator, wait_until
from tests.engine import EngineError, FakeEngine, ProviderHost, run_program
from tests.plugin_process import native_provider
from tests.reliability.docs import normalize, section, write_section, writing
from tests.sites import plugin, site, write_tree

Kind = Literal[
    "App", "AppDeploy", "AppDomain", "AppDomainVerification", "AppPromotion", "PluginDeployment"
]
HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
KEY_ECHO = "invalid key"


@dataclass
class Case:
    kind: Kind
    step: str
    fault: str
    inject: Callable[[EmulatorHandle, str], None]
    expect: Literal["success", "error"]
    says: str = ""
    converges: bool = True
    wrong_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    drive: Callable[[dict[str, Any], str, Path], str] | None = None
    """Runs the first `pulumi up` itself and returns its outcome, for a fault the engine
    stand-in cannot bring (a Cancel goes through the native provider: the SDK's dynamic
    host ignores one)."""

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.kind} {self.step} {self.fault}".lower()).strip(
            "-"
        )


def error_body(status: int, type_: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """The API's documented ErrorResponse shape."""
    return {
        "success": False,
        "status": status,
        "error": {"type": type_, "message": message, "details": details},
    }


def rule(method: str, path: str, **kw: Any) -> Callable[[EmulatorHandle, str], None]:
    return lambda emu, scope: emu.fault(method=method, path=path.replace("{scope}", scope), **kw)


def nxt(**kw: Any) -> Callable[[EmulatorHandle, str], None]:
    return lambda emu, _scope: emu.next(**kw)


def both(*steps: Callable[[EmulatorHandle, str], None]) -> Callable[[EmulatorHandle, str], None]:
    def run(emu: EmulatorHandle, scope: str) -> None:
        for step in steps:
            step(emu, scope)

    return run


def cancel_mid_create(env: dict[str, Any], scope: str, tmp: Path) -> str:
    """The first `pulumi up` through the native provider, with Ctrl-C (its Cancel) once the
    deploy was requested; the engine keeps what the error carries, the journal the rest."""
    emu: EmulatorHandle = env["emu"]
    bundle = write_tree(tmp / "dist", site())
    news = {"appId": scope, "bundle": str(bundle), "environment": "staging", "timeoutSeconds": 20}
    urn = "urn:pulumi:dev::mixpeek-test::mixpeek:index:AppDeploy::site"
    with native_provider(emu.url, emu.api_key, env["state_dir"]) as stub:
        checked = stub.Check(provider_pb2.CheckRequest(urn=urn, news=wire.dump(news)))
        create = stub.Create.future(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))
        assert wait_until(lambda: emu.count("POST", f"/v1/apps/{scope}/deploy") == 1, 30)
        time.sleep(0.5)  # the status request is held by now
        stub.Cancel(empty_pb2.Empty())
        try:
            create.result(timeout=10)
        except grpc.RpcError as exc:
            return str(exc.details()).splitlines()[0]
    return "success"


APP = "/v1/apps/{scope}"
STATUS = APP + "/deploys/dep_????????????"  # the deploy's status, not its log stream
PLUG = "/v1/namespaces/{scope}/plugins"
CASES = [
    # AppDeploy
    Case(
        "AppDeploy",
        "upload-url",
        "429 with Retry-After",
        rule("POST", APP + "/deploy/upload-url", status=429, retry_after="1"),
        "success",
    ),
    Case(
        "AppDeploy",
        "upload-url",
        "burst of 500/502/503/504",
        both(*(rule("POST", APP + "/deploy/upload-url", status=s) for s in (500, 502, 503, 504))),
        "success",
    ),
    Case(
        "AppDeploy",
        "upload-url",
        "HTML error page from a proxy",
        rule("POST", APP + "/deploy/upload-url", status=502, raw=HTML),
        "success",
    ),
    Case(
        "AppDeploy",
        "storage PUT",
        "burst of 500/503",
        rule(
            "PUT",
            "/_storage/app-builds/{scope}/*",
            status=503,
            times=2,
            raw="<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>",
            content_type="application/xml",
        ),
        "success",
    ),
    Case(
        "AppDeploy",
        "storage PUT",
        "presigned URL expired before the PUT",
        nxt(expire_upload_urls=1),
        "success",
    ),
    Case(
        "AppDeploy",
        "storage PUT",
        "connection reset",
        rule("PUT", "/_storage/app-builds/{scope}/*", action="drop"),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "429 with Retry-After",
        rule("POST", APP + "/deploy", status=429, retry_after="1"),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "503 (stored nothing)",
        rule("POST", APP + "/deploy", status=503, retry_after="1"),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "500",
        rule("POST", APP + "/deploy", status=500),
        "error",
        "HTTP 500",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "connection reset after the server stored it",
        rule("POST", APP + "/deploy", action="drop", after_handler=True),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "response slower than the read timeout",
        rule("POST", APP + "/deploy", action="delay", delay=3.0),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "truncated JSON after the server stored it",
        rule(
            "POST",
            APP + "/deploy",
            status=200,
            raw='{"app_id": "x", "dep',
            content_type="application/json",
            after_handler=True,
        ),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "missing required fields after the server stored it",
        rule("POST", APP + "/deploy", status=200, body={"status": "queued"}, after_handler=True),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "403 quota exceeded",
        rule(
            "POST",
            APP + "/deploy",
            status=403,
            body=error_body(
                403,
                "QuotaExceededError",
                "Deploy quota exceeded for tier free",
                {
                    "resource": "deploys",
                    "current": 100,
                    "limit": 100,
                    "tier": "free",
                },
            ),
        ),
        "error",
        "HTTP 403 QuotaExceededError",
    ),
    Case(
        "AppDeploy",
        "deploy status",
        "burst of 500/502/503/504",
        both(*(rule("GET", APP + "/deploys/*", status=s) for s in (500, 502, 503, 504))),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy status",
        "malformed JSON",
        rule(
            "GET",
            APP + "/deploys/*",
            status=200,
            raw="{oops",
            content_type="application/json",
            times=2,
        ),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy status",
        "missing required fields",
        rule("GET", APP + "/deploys/*", status=200, body={"status": "building"}, times=2),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy status",
        "status flapping through unknown values",
        nxt(status_flap=["warming", "QUEUED_AGAIN", "???"]),
        "success",
    ),
    Case("AppDeploy", "log stream", "cut mid-way", nxt(sse_cut_after=2), "success"),
    Case("AppDeploy", "log stream", "never sends done", nxt(sse_never_done=True), "success"),
    Case(
        "AppDeploy",
        "log stream",
        "500 on connect",
        rule("GET", APP + "/deploys/*/logs/stream", status=500, times=3),
        "success",
    ),
    Case(
        "AppDeploy",
        "versions",
        "503 burst",
        rule("GET", APP + "/versions", status=503, times=2),
        "success",
    ),
    Case(
        "AppDeploy",
        "build",
        "deploy failed",
        nxt(deploy_fail_reason="bundle download failed: 404 from storage"),
        "error",
        "ended with status failed: bundle download failed",
    ),
    Case(
        "AppDeploy",
        "build",
        "smoke test failed",
        nxt(smoke_test_fail=True),
        "error",
        "its smoke test failed",
    ),
    Case(
        "AppDeploy",
        "any",
        "401 wrong key",
        lambda _e, _s: None,
        "error",
        "HTTP 401 UnauthorizedError",
        wrong_key=True,
    ),
    # AppPromotion
    Case(
        "AppPromotion",
        "restore",
        "429 with Retry-After",
        rule("POST", APP + "/versions/*/restore", status=429, retry_after="1"),
        "success",
    ),
    Case(
        "AppPromotion",
        "restore",
        "500",
        rule("POST", APP + "/versions/*/restore", status=500),
        "error",
        "HTTP 500",
    ),
    Case(
        "AppPromotion",
        "restore",
        "connection reset after the server stored it",
        rule("POST", APP + "/versions/*/restore", action="drop", after_handler=True),
        "success",
    ),
    Case(
        "AppPromotion",
        "versions",
        "burst of 502/503",
        both(
            rule("GET", APP + "/versions/*", status=502),
            rule("GET", APP + "/versions/*", status=503),
        ),
        "success",
    ),
    Case(
        "AppPromotion",
        "restore",
        "HTML error page from a proxy",
        rule("POST", APP + "/versions/*/restore", status=502, raw=HTML),
        "error",
        "an HTML page ('502 Bad Gateway')",
    ),
    Case(
        "AppPromotion",
        "restore",
        "HTML 502 after the server stored it",
        rule("POST", APP + "/versions/*/restore", status=502, raw=HTML, after_handler=True),
        "success",
    ),
    # PluginDeployment
    Case(
        "PluginDeployment",
        "uploads",
        "429 with Retry-After",
        rule("POST", PLUG + "/uploads", status=429, retry_after="1"),
        "success",
    ),
    Case(
        "PluginDeployment",
        "uploads",
        "503 burst",
        rule("POST", PLUG + "/uploads", status=503, times=2, retry_after="0"),
        "success",
    ),
    Case(
        "PluginDeployment",
        "uploads",
        "403 quota exceeded",
        rule(
            "POST",
            PLUG + "/uploads",
            status=403,
            body=error_body(
                403,
                "QuotaExceededError",
                "Plugin quota of 10 reached",
                {"resource": "plugins", "current": 10, "limit": 10},
            ),
        ),
        "error",
        "Plugin quota of 10 reached",
    ),
    Case(
        "PluginDeployment",
        "storage PUT",
        "presigned URL expired before the PUT",
        nxt(expire_upload_urls=1),
        "success",
    ),
    Case(
        "PluginDeployment",
        "confirm",
        "500",
        rule("POST", PLUG + "/uploads/*/confirm", status=500),
        "error",
        "HTTP 500",
    ),
    Case(
        "PluginDeployment",
        "confirm",
        "connection reset after the server stored it",
        rule("POST", PLUG + "/uploads/*/confirm", action="drop", after_handler=True),
        "error",
        "could not reach the Mixpeek API",
    ),
    Case(
        "PluginDeployment",
        "confirm",
        "plugin validation failed",
        rule(
            "POST",
            PLUG + "/uploads/*/confirm",
            status=400,
            body=error_body(
                400,
                "ValidationError",
                "Plugin validation failed",
                {"validation_errors": ["pipeline.py:3:0: blocked import 'socket'"]},
            ),
        ),
        "error",
        "pipeline.py:3:0: blocked import 'socket'",
    ),
    Case(
        "PluginDeployment",
        "deploy",
        "503",
        rule("POST", PLUG + "/*/deploy", status=503, retry_after="0"),
        "success",
    ),
    Case(
        "PluginDeployment",
        "deploy",
        "500",
        rule("POST", PLUG + "/*/deploy", status=500),
        "error",
        "HTTP 500",
    ),
    Case(
        "PluginDeployment",
        "status",
        "burst of 500/502/503/504",
        both(*(rule("GET", PLUG + "/*/status", status=s) for s in (500, 502, 503, 504))),
        "success",
    ),
    Case(
        "PluginDeployment",
        "status",
        "status flapping through unknown values",
        nxt(status_flap=["warming", "Scaling"]),
        "success",
    ),
    Case(
        "PluginDeployment",
        "deployment",
        "FAILED",
        nxt(plugin_fail_reason="replica crashed: CUDA OOM"),
        "error",
        "ended with status FAILED: replica crashed",
    ),
    Case(
        "PluginDeployment",
        "uploads",
        "409 with different code",
        lambda e, s: _seed_plugin(e, s),
        "error",
        "with different code",
        converges=False,
    ),
    Case(
        "PluginDeployment",
        "undeploy",
        "500 on destroy",
        rule("POST", PLUG + "/*/undeploy", status=500),
        "success",
        extra={"destroy": True},
    ),
    Case(
        "PluginDeployment",
        "any",
        "401 wrong key",
        lambda _e, _s: None,
        "error",
        "HTTP 401 UnauthorizedError",
        wrong_key=True,
    ),
    # AppDeploy: one time budget per exchange, Cancel, and a cap on every answer
    Case(
        "AppDeploy",
        "deploy status",
        "body trickled one byte every 0.3 s, forever",
        rule("GET", STATUS, action="trickle", status=200, delay=0.3),
        "success",
    ),
    Case(
        "AppDeploy",
        "deploy status",
        "held open, then Ctrl-C (native provider's Cancel)",
        rule("GET", STATUS, action="delay", delay=3600),
        "error",
        "was interrupted before it finished",
        drive=cancel_mid_create,
    ),
    Case(
        "AppDeploy",
        "deploy POST",
        "400 MB answer after the server stored it",
        rule(
            "POST", APP + "/deploy", action="flood", status=200, size=400 << 20, after_handler=True
        ),
        "success",
    ),
    # App, AppDomain, AppDomainVerification
    Case(
        "App",
        "create POST",
        "429 with Retry-After",
        rule("POST", "/v1/apps", status=429, retry_after="1"),
        "success",
    ),
    Case(
        "App",
        "update PATCH",
        "burst of 500/502/503/504",
        both(*(rule("PATCH", APP, status=s) for s in (500, 502, 503, 504))),
        "success",
        extra={"update": True},
    ),
    Case(
        "App",
        "any",
        "401 wrong key",
        lambda _e, _s: None,
        "error",
        "HTTP 401 UnauthorizedError",
        wrong_key=True,
    ),
    Case(
        "AppDomain",
        "add POST",
        "500",
        rule("POST", APP + "/domains", status=500),
        "error",
        "HTTP 500",
    ),
    Case(
        "AppDomain",
        "any",
        "401 wrong key",
        lambda _e, _s: None,
        "error",
        "HTTP 401 UnauthorizedError",
        wrong_key=True,
    ),
    Case(
        "AppDomainVerification",
        "domain list",
        "burst of 500/502/503/504",
        both(*(rule("GET", APP + "/domains", status=s) for s in (500, 502, 503, 504))),
        "success",
    ),
]


def _seed_plugin(emu: EmulatorHandle, scope: str) -> None:
    files = plugin(body="return {'x': 1}")
    emu.seed_plugin(scope, "text_embed", "1.0.0", files).raise_for_status()


@dataclass
class Row:
    case: Case
    outcome: str
    intended_posts: int
    next_up: str


ROWS: dict[str, Row] = {}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from mixpeek_emulator.state import Timing

    emu = start_emulator(timing=Timing(0.05, 0.3, 0.3))
    state_dir = tmp_path_factory.mktemp("inflight")
    hosts = {
        good: ProviderHost(
            env={"MIXPEEK_PULUMI_STATE_DIR": str(state_dir), "MIXPEEK_HTTP_READ_TIMEOUT": "1.5"}
        )
        for good in (True, False)
    }
    try:
        yield {"emu": emu, "hosts": hosts, "state_dir": state_dir}
    finally:
        for host in hosts.values():
            host.close()
        emu.running.stop()


def engine_for(env: dict[str, Any], good_key: bool) -> FakeEngine:
    emu: EmulatorHandle = env["emu"]
    key = emu.api_key if good_key else "sk_test_WRONG_KEY_000000"
    return FakeEngine(
        env["hosts"][good_key],
        config={"mixpeek:apiKey": key, "mixpeek:baseUrl": emu.url},
        secret_keys={"mixpeek:apiKey"},
    )


def app_programs(
    case: Case, scope: str, opts: dict[str, Any]
) -> tuple[Callable[[], None], Callable[[], None] | None] | None:
    """The programs of the app's own kinds (the app, its domain, the domain's verification);
    None for the others."""
    if case.kind == "App":
        slug = f"own-{scope.removeprefix('app_')}"

        def app(title: str) -> None:
            made = App("app", slug=slug, meta={"title": title})
            pulumi.export("app_id", made.app_id)

        if case.extra.get("update"):
            return (lambda: app("Second")), (lambda: app("First"))
        return (lambda: app("First")), None
    hostname = f"{scope.replace('_', '-')}.acme.com"  # domains are unique across apps
    if case.kind == "AppDomain":

        def domain() -> None:
            AppDomain("d", app_id=scope, domain=hostname)

        return domain, None
    if case.kind == "AppDomainVerification":

        def verified() -> None:
            domain = AppDomain("d", app_id=scope, domain=hostname)
            AppDomainVerification("v", app_id=scope, domain=domain.domain, **opts)

        return verified, None
    return None


def programs(
    case: Case, scope: str, tmp: Path
) -> tuple[Callable[[], None], Callable[[], None] | None]:
    opts: dict[str, Any] = {"poll_interval_seconds": 0.2, "timeout_seconds": 20}
    own = app_programs(case, scope, opts)
    if own is not None:
        return own
    if case.kind == "PluginDeployment":
        source = write_tree(tmp / "plugin", plugin())

        def plug() -> None:
            PluginDeployment(
                "p",
                namespace_id=scope,
                name="text_embed",
                version="1.0.0",
                source=str(source),
                **opts,
            )

        return plug, None
    bundle = write_tree(tmp / "dist", site())

    def staging() -> Any:
        return AppDeploy("site", app_id=scope, bundle=str(bundle), environment="staging", **opts)

    if case.kind == "AppDeploy":
        return (lambda: pulumi.export("v", staging().version)), None

    def promoted() -> None:
        AppPromotion("prod", app_id=scope, version=staging().version, environment="production")

    return promoted, (lambda: staging() and None)


def intended_posts(emu: EmulatorHandle, case: Case, scope: str) -> int:
    if case.kind == "App":
        pattern = "/v1/apps"
    elif case.kind in ("AppDomain", "AppDomainVerification"):
        pattern = f"/v1/apps/{scope}/domains"
    elif case.kind == "AppDeploy":
        pattern = f"/v1/apps/{scope}/deploy"
    elif case.kind == "AppPromotion":
        pattern = f"/v1/apps/{scope}/versions/*/restore"
    else:
        pattern = f"/v1/namespaces/{scope}/plugins/uploads/*/confirm"
    # What the emulator stored: the handler ran and answered 200, or stored before a cut.
    return sum(
        1
        for r in emu.requests()
        if r["method"] == "POST"
        and re.fullmatch(pattern.replace("*", "[^/]+"), r["path"])
        and r["handled"]
        and r["status"] in (200, 0)
    )


def scope_for(emu: EmulatorHandle, case: Case) -> str:
    """What the case's resources live in: an app made beforehand, or a namespace; an App
    makes its own app (none is made to be counted), named from this."""
    stamp = f"{len(ROWS)}-{int(time.time() * 1000) % 100000}"
    if case.kind == "App":
        return f"app_{stamp}"
    if case.kind == "PluginDeployment":
        return f"ns_{case.id[:40]}"
    return emu.create_app(f"m-{stamp}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, env: dict[str, Any], tmp_path: Path) -> None:
    emu: EmulatorHandle = env["emu"]
    httpx_reset(emu)
    scope = scope_for(emu, case)
    main, before = programs(case, scope, tmp_path)
    engine = engine_for(env, good_key=not case.wrong_key)
    if before is not None:
        run_program(engine, before)
    case.inject(emu, scope)
    outcome = "success"
    try:
        if case.drive is not None:
            outcome = case.drive(env, scope, tmp_path)
        else:
            run_program(engine, main)
        if case.extra.get("destroy"):
            engine.destroy()
    except EngineError as exc:
        outcome = exc.headline
    if case.expect == "success":
        assert outcome == "success", outcome
    else:
        assert outcome != "success"
        assert case.says in outcome, outcome
        assert outcome[0].isupper()
        assert outcome.endswith(".")
    posts = intended_posts(emu, case, scope)

    next_up = "n/a: needs a version bump"
    if case.converges:
        httpx_reset(emu, keep_log=True)
        good = engine if not case.wrong_key else engine_for(env, good_key=True)
        if case.extra.get("destroy"):
            if engine.state:
                engine.destroy()
        else:
            if good is not engine and before is not None:
                run_program(good, before)
            run_program(good, main)
            assert all(op == "same" for op, _ in run_program(good, main).steps)
        posts = intended_posts(emu, case, scope)
        next_up = (
            "converges, no duplicate"
            if posts <= (2 if _retry_is_new_attempt(case, outcome) else 1)
            else f"{posts} POSTs"
        )
        assert next_up == "converges, no duplicate", f"{posts} intended POSTs for one change"
    ROWS[case.id] = Row(case, outcome, posts, next_up)


def _retry_is_new_attempt(case: Case, outcome: str) -> bool:
    """A deploy the service accepted and then failed was the user's first attempt."""
    return outcome != "success" and (
        "ended with status" in outcome or "smoke test failed" in outcome
    )


def httpx_reset(emu: EmulatorHandle, keep_log: bool = False) -> None:
    import httpx

    log = emu.requests() if keep_log else []
    httpx.post(f"{emu.url}/_emulator/reset").raise_for_status()
    emu.running.emulator.faults.log.extend(_entries(log))


def _entries(log: list[dict[str, Any]]) -> list[Any]:
    from mixpeek_emulator.faults import LoggedRequest

    return [LoggedRequest(**r) for r in log]


def write_doc() -> None:
    lines = [
        "## The fault matrix",
        "",
        "Generated by `make reliability` from `tests/reliability/test_fault_matrix.py`, which runs each",
        "resource through the real provider host and the engine stand-in against `mixpeek-emulator`",
        "with the fault injected. *Outcome* is the result of that `pulumi up` (the first line of the",
        "error when it failed). *Intended POSTs* counts the deploy / restore / plugin-confirm requests",
        "the emulator stored (its handler ran and answered, or stored before the connection was cut),",
        "over that run and the next one. *Next up* is whether a second `pulumi up` with the fault",
        "gone converges with no duplicate, and a third shows no change.",
        "",
        "| # | resource | step | fault | outcome | intended POSTs | next up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, case in enumerate(CASES, 1):
        row = ROWS[case.id]
        lines.append(
            f"| {i} | {case.kind} | {case.step} | {case.fault} | {normalize(row.outcome)} | "
            f"{row.intended_posts} | {row.next_up} |"
        )
    write_section("fault-matrix", lines)


def test_the_committed_table_lists_every_case() -> None:
    if writing():
        assert len(ROWS) == len(CASES), "run the whole matrix to write the table"
        write_doc()
    text = section("fault-matrix")
    for case in CASES:
        assert f"| {case.kind} | {case.step} | {case.fault} |" in text, (
            f"docs/reliability.md lacks {case.id}; run make reliability"
        )
