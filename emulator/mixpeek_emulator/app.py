"""The emulated Mixpeek API: App deploys and namespace Plugins, in the official SDKs' shape.

Written from the API documents and the official SDKs' models, independently of the
``mixpeek_pulumi`` client, so the two can disagree when the client is wrong. Request bodies are
checked against the official request schemas and refuse undeclared keys (422
``extra_forbidden``, as the real API does since 2026-11-02); every error, unknown routes
included, is an ``ErrorResponse``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .context import ApiFailure, Context, authorize, error_body
from .faults import FaultMiddleware, Faults
from .routes import apps as app_routes
from .routes import control, plugins, sites, storage
from .state import EXTENSIONS, App, Store, Timing
from .storage import ObjectStore


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
) -> Emulator:
    """Build the emulator; ``apps`` are slugs of apps that exist from the start, and
    ``extensions`` (off by default) add fields the official models do not define."""
    chosen = frozenset(extensions)
    if not chosen <= EXTENSIONS:
        raise ValueError(f"unknown extensions {sorted(chosen - EXTENSIONS)}")
    scratch = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="mixpeek-emulator-"))
    root = data_dir or scratch
    assert root is not None
    timing = timing or Timing()
    ctx = Context(
        api_key=api_key,
        store=Store(data_dir, timing),
        objects=ObjectStore(root / "objects", public_url),
        faults=Faults(),
        timing=timing,
        extensions=chosen,
        scratch=scratch,
    )
    api = FastAPI(title="mixpeek-emulator", version="0.82", docs_url=None, redoc_url=None)
    api.state.context = ctx
    _error_handlers(api)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])
    v1.include_router(app_routes.router)
    v1.include_router(plugins.router)
    api.include_router(v1)
    api.include_router(storage.router)
    api.include_router(sites.router)
    api.include_router(control.router)
    _seed_apps(ctx.store, apps)
    return Emulator(api, FaultMiddleware(api, ctx.faults), ctx)


def _seed_apps(store: Store, slugs: Iterable[str]) -> None:
    with store.lock:
        for slug in slugs:
            app_id = f"app_{slug.replace('-', '_')}"
            if app_id not in store.state.apps:
                store.state.apps[app_id] = App(
                    app_id=app_id, slug=slug, title=slug, created_at=time.time()
                )
        store.save()


def _error_handlers(api: FastAPI) -> None:
    @api.exception_handler(ApiFailure)
    async def _api_failure(_request: Request, exc: ApiFailure) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                "type": e.get("type"),
                "location": ".".join(str(p) for p in e.get("loc", ())),
                "message": e.get("msg"),
            }
            for e in exc.errors()
        ]
        body = error_body(
            422,
            "ValidationError",
            "Request validation failed",
            "validation_error",
            {"validation_errors": items},
        )
        return JSONResponse(body, status_code=422)

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # Unknown routes and methods answer in the API's envelope, not FastAPI's {"detail"}.
        kinds: dict[int, str] = {404: "NotFoundError", 405: "MethodNotAllowedError"}
        message = f"{request.method} {request.url.path}: {exc.detail}"
        body: dict[str, Any] = error_body(
            exc.status_code, kinds.get(exc.status_code, "HTTPError"), message
        )
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
