"""The emulated Mixpeek API: App deploys and namespace Plugins, in the official SDKs' shape.

Written from the API documents and the official SDKs' models, independently of the
``mixpeek_pulumi`` client, so the two can disagree when the client is wrong. Request bodies are
checked against the contracts (``contract.py``) and refuse undeclared keys (422
``extra_forbidden``, as the real API does since 2026-11-02); every error, unknown routes
included, is in the envelope of its route family, and a documented operation the emulator does
not serve answers 501.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from . import contract
from .clock import Clock
from .closing import Closing
from .context import ApiFailure, Context, authorize, context, error_body, invalid, problem
from .contract import family_of
from .disk import DiskFull, full_message
from .faults import FaultMiddleware, Faults
from .routes import apps as app_routes
from .routes import control, domains, plugins, sites, storage
from .state import EXTENSIONS, App, StatusCase, Store, Timing, new_id
from .storage import ObjectStore, StorageRefusal, kept_secret


@dataclass
class Emulator:
    """The ASGI app and the state behind it; ``asgi`` is what a server runs."""

    api: FastAPI
    asgi: FaultMiddleware
    context: Context

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def faults(self) -> Faults:
        return self.context.faults

    @property
    def objects(self) -> ObjectStore:
        return self.context.objects

    @property
    def timing(self) -> Timing:
        return self.context.timing

    @property
    def closing(self) -> Closing:
        return self.context.closing

    def set_public_url(self, url: str) -> None:
        """Where presigned storage URLs point; known only once the server has its port."""
        self.context.objects.public_url = url.rstrip("/")

    def close(self) -> None:
        if self.context.scratch is not None:
            shutil.rmtree(self.context.scratch, ignore_errors=True)


def create_app(
    *,
    api_key: str,
    data_dir: Path | None = None,
    timing: Timing | None = None,
    public_url: str = "http://127.0.0.1",
    apps: Iterable[str] = (),
    extensions: Iterable[str] = (),
    plugin_status_case: StatusCase = "lower",
    clock: Clock | None = None,
) -> Emulator:
    """Build the emulator; ``apps`` are slugs of apps that exist from the start,
    ``extensions`` (off by default) add fields the official models do not define,
    ``plugin_status_case`` spells plugin statuses as the wire examples do (``lower``) or as
    the status model's description does (``upper``), and ``clock`` is what it reads the time
    from (the machine's, unless a test steps one of its own)."""
    chosen = frozenset(extensions)
    if not chosen <= EXTENSIONS:
        raise ValueError(f"unknown extensions {sorted(chosen - EXTENSIONS)}")
    scratch = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="mixpeek-emulator-"))
    root = data_dir or scratch
    assert root is not None
    timing = timing or Timing()
    store = Store(data_dir, timing, clock)
    ctx = Context(
        api_key=api_key,
        store=store,
        objects=ObjectStore(
            root / "objects",
            public_url,
            kept_secret(data_dir) if data_dir is not None else None,
            store.clock,
        ),
        faults=Faults(),
        timing=timing,
        extensions=chosen,
        scratch=scratch,
        closing=Closing(),
        plugin_status_case=plugin_status_case,
    )
    api = FastAPI(title="mixpeek-emulator", version="0.82", docs_url=None, redoc_url=None)
    api.state.context = ctx
    _error_handlers(api)
    v1 = APIRouter(prefix=V1, dependencies=[Depends(authorize)])
    for router in API_ROUTERS:
        v1.include_router(router)
    api.include_router(v1)
    api.include_router(storage.router)
    api.include_router(sites.router)
    api.include_router(control.router)
    _unemulated(api)
    _seed_apps(ctx.store, apps)
    hosts = sites.SiteHosts(api, ctx)
    return Emulator(api, FaultMiddleware(hosts, ctx.faults, ctx.closing), ctx)


def _seed_apps(store: Store, slugs: Iterable[str]) -> None:
    """An app for each slug no app has yet: a restart with the same ``--data-dir`` and
    ``--app`` finds the apps it made (or that replaced them) instead of adding twins. The id
    is ``app_`` and the slug, unless an app renamed since holds it."""
    with store.lock:
        for slug in slugs:
            if any(a.slug == slug for a in store.state.apps.values()):
                continue
            app_id = f"app_{slug.replace('-', '_')}"
            if app_id in store.state.apps:
                app_id = new_id("app")
            store.state.apps[app_id] = App(
                app_id=app_id, slug=slug, title=slug, created_at=store.clock.time()
            )
        store.save()


V1: Final = "/v1"
# Served under /v1, behind the key.
API_ROUTERS: Final = (app_routes.router, domains.router, plugins.router)


def unemulated() -> tuple[contract.Operation, ...]:
    """The operations the contracts document that the emulator does not serve: each answers
    501 in the API's envelope, after the API key is checked, so it never looks like a wrong
    path (404) or a wrong method (405)."""
    served = {
        (method, V1 + route.path)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    return tuple(op for op in contract.operations() if (op.method, op.path) not in served)


def _unemulated(api: FastAPI) -> None:
    for op in unemulated():
        api.add_api_route(
            op.path,
            _not_emulated(op),
            methods=[op.method],
            dependencies=[Depends(authorize)],
            include_in_schema=False,
        )


def _not_emulated(op: contract.Operation) -> Callable[[], Awaitable[None]]:
    async def answer() -> None:
        raise ApiFailure(
            501,
            "NotImplementedError",
            f"{op.method} {op.path} ({op.operation_id}) is part of the Mixpeek API but "
            "mixpeek-emulator does not emulate it; run it against the Mixpeek service.",
            details={"operation_id": op.operation_id, "method": op.method, "path": op.path},
        )

    answer.__name__ = f"not_emulated_{op.operation_id}"
    return answer


def _error_handlers(api: FastAPI) -> None:
    @api.exception_handler(DiskFull)
    async def _disk_full(request: Request, exc: DiskFull) -> Response:
        # 507 Insufficient Storage: no client retries it, and nothing was stored.
        ctx = context(request)
        folder = ctx.store.data_dir or ctx.scratch
        assert folder is not None
        message = full_message(folder)
        path = request.scope["path"]
        if path.startswith(storage.router.prefix + "/"):
            refusal = StorageRefusal(507, "InsufficientStorage", message)
            key = str(request.path_params.get("key", ""))
            return Response(refusal.xml(key), status_code=507, media_type="application/xml")
        failure = ApiFailure(507, "InsufficientStorageError", message, code="insufficient_storage")
        return JSONResponse(failure.body(family_of(path)), status_code=507)

    @api.exception_handler(ApiFailure)
    async def _api_failure(request: Request, exc: ApiFailure) -> JSONResponse:
        # scope["path"], not url.path: the URL drops control characters a path may hold.
        return JSONResponse(exc.body(family_of(request.scope["path"])), status_code=exc.status)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            problem(str(e.get("type")), list(e.get("loc", ())), str(e.get("msg")))
            for e in exc.errors()
        ]
        return await _api_failure(request, invalid(problems))

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # Unknown routes and methods answer in the API's envelope, not FastAPI's {"detail"}.
        kinds: dict[int, str] = {404: "NotFoundError", 405: "MethodNotAllowedError"}
        path = request.scope["path"]
        message = f"{request.method} {path}: {exc.detail}"
        family = family_of(path)
        body = error_body(family, exc.status_code, kinds.get(exc.status_code, "HTTPError"), message)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; every documented
            # method of the path is allowed (each is served, or answers 501).
            documented = contract.methods_of(path)
            if documented:
                headers["Allow"] = ", ".join(documented)
        return JSONResponse(body, status_code=exc.status_code, headers=headers)
