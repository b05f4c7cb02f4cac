"""MixpeekClient: one typed method per Mixpeek endpoint the resources use, over one httpx.Client.

It returns pydantic models and raises only ``MixpeekError`` subclasses: no httpx exception escapes.
The API key is sent only to the API (never to presigned storage URLs) and never appears in an
error, a ``repr`` or a log line. Every exchange is bounded in time and size (``bounds``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import pydantic
from httpx_sse import ServerSentEvent

from .._version import __version__
from ..config import ProviderConfig
from ..deadline import Deadline
from ..errors import (
    ApiConnectionError,
    ApiStatusError,
    MixpeekError,
    ResponseValidationError,
)
from .answers import status_error, storage_error
from .models import (
    AddDomainRequest,
    AppResponse,
    ConfirmPluginUploadRequest,
    ConfirmPluginUploadResponse,
    CreateAppRequest,
    CreatePluginUploadRequest,
    DeleteResponse,
    DeploymentType,
    DeployRequest,
    DeployResponse,
    DeployStatusResponse,
    DomainResponse,
    DownloadUrlResponse,
    Environment,
    ListAppsResponse,
    ListDomainsResponse,
    PluginDeleteResponse,
    PluginDeployResponse,
    PluginDetailResponse,
    PluginListResponse,
    PluginPresignedUrlResponse,
    PluginStatusResponse,
    PluginUndeployResponse,
    Request,
    Response,
    RestoreVersionRequest,
    RestoreVersionResponse,
    UpdateAppRequest,
    UploadUrlRequest,
    UploadUrlResponse,
    VersionDetailResponse,
    VersionDiffResponse,
    VersionListResponse,
    VersionRecord,
)
from .retry import RetryPolicy
from .skim import ANY, Rule, SkimError, Skimmed, skim
from .transport import MAX_BODY, MAX_ERROR_BODY, Answer, EventReader, Lane, exchange

R = TypeVar("R", bound=Response)

USER_AGENT: Final = f"mixpeek-pulumi/{__version__} (+https://github.com/mixpeek/mixpeek-pulumi)"
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=120.0, pool=10.0)
# Builds can go quiet for a while; an idle stream is reopened rather than waited on forever.
STREAM_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
UPLOAD_CHUNK: Final = 1024 * 1024
HISTORY_WITHOUT_FILES: Final = (
    Rule(("versions", ANY, "asset_manifest")),
    Rule(("versions", ANY, "source_files")),
)
"""What an answer carrying the version history leaves out: each version's file list and
source files, which grow with every deploy (``get_version`` reads one version's)."""


@dataclass(frozen=True)
class StoredObject:
    """What the presigned PUT answered: the object's ETag without quotes."""

    etag: str | None


class Body(Protocol):
    """What an upload reads from: a file, or one that counts what is read."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def read(self, size: int = -1, /) -> bytes: ...


class MixpeekClient:
    """A synchronous Mixpeek API client; use it as a context manager.

    ``deadline`` is the operation's: every request's timeouts and every retry's wait are cut
    to what is left of it, and its Cancel ends both at once. An API request has the read
    timeout for its whole exchange, not for each read; an upload, a download and the log
    stream have what is left of the deadline. Each thread gets its own connection pool (a
    ``Lane``), so cutting one exchange short never touches another thread's.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        log: Callable[[str], None] | None = None,
        deadline: Deadline | None = None,
        endpoint_source: str = "the client's `base_url`",
    ) -> None:
        self._api_key = api_key
        self._endpoint_source = endpoint_source
        self._timeout = timeout
        self._deadline = deadline or Deadline.never()
        self._retry = retry or RetryPolicy()
        if log is not None and self._retry.on_retry is None:
            self._retry = dataclasses.replace(self._retry, on_retry=log)
        self._base_url = base_url
        self._transport = transport
        self._local = threading.local()
        self._lanes: list[Lane] = []
        self._lanes_lock = threading.Lock()
        self._closed = False
        # A bad base URL is refused here, not at the first request.
        self._base = str(self._lane().http.base_url).rstrip("/")

    @classmethod
    def from_config(
        cls,
        config: ProviderConfig,
        *,
        log: Callable[[str], None] | None = None,
        deadline: Deadline | None = None,
        **kwargs: Any,
    ) -> MixpeekClient:
        timeout = httpx.Timeout(
            connect=DEFAULT_TIMEOUT.connect,
            read=config.read_timeout,
            write=DEFAULT_TIMEOUT.write,
            pool=DEFAULT_TIMEOUT.pool,
        )
        kwargs.setdefault("timeout", timeout)
        return cls(
            api_key=config.require_key(),
            base_url=config.base_url,
            log=log,
            deadline=deadline,
            endpoint_source=config.endpoint_source,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"MixpeekClient(base_url={self._base + '/'!r})"

    def __enter__(self) -> MixpeekClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lanes_lock:
            lanes, self._lanes, self._closed = self._lanes, [], True
        for lane in lanes:
            lane.http.close()

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def deadline(self) -> Deadline:
        return self._deadline

    @contextmanager
    def bound(self, deadline: Deadline) -> Iterator[MixpeekClient]:
        """The same client under another deadline, for a step with a bound of its own (the
        checks after a switch, a rollback): a slow build never shortens it."""
        other = MixpeekClient(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self._timeout,
            retry=self._retry,
            transport=self._transport,
            deadline=deadline,
            endpoint_source=self._endpoint_source,
        )
        try:
            yield other
        finally:
            other.close()

    # ------------------------------------------------------------------------------ transport

    def _lane(self) -> Lane:
        if self._closed:
            # A thread that outlived its operation (a log follower) must not open a new pool.
            raise MixpeekError("The Mixpeek API client was closed: its operation has ended.")
        lane: Lane | None = getattr(self._local, "lane", None)
        if lane is None:
            lane = Lane(
                httpx.Client(
                    base_url=self._base_url,
                    timeout=self._timeout,
                    transport=self._transport,
                    # Compressed answers could grow past the caps in one chunk.
                    headers={
                        "User-Agent": USER_AGENT,
                        "Accept": "application/json",
                        "Accept-Encoding": "identity",
                    },
                    follow_redirects=False,
                )
            )
            with self._lanes_lock:
                self._lanes.append(lane)
            self._local.lane = lane
        return lane

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Request | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        lane = self._lane()
        with exchange(lane, self._deadline, method, path, self._timeout.read) as ex:
            request = lane.http.build_request(
                method,
                path,
                json=body.to_json() if body is not None else None,
                params=params,
                headers=self._auth(),
                timeout=ex.timeouts(self._timeout),
                extensions=lane.extensions,
            )
            answer = ex.fetch(request)
        if answer.is_error or answer.is_redirect:
            raise self._status_error(method, path, answer)
        return answer

    def _skimmed(self, method: str, path: str, rules: tuple[Rule, ...]) -> Skimmed:
        """A GET whose answer is read as it streams in, keeping only what ``rules`` let
        through: memory stays bounded whatever the answer's size."""
        lane = self._lane()
        with exchange(lane, self._deadline, method, path, self._timeout.read) as ex:
            request = lane.http.build_request(
                method,
                path,
                headers=self._auth(),
                timeout=ex.timeouts(self._timeout),
                extensions=lane.extensions,
            )
            with ex.streamed(request) as response:
                if response.is_error or response.is_redirect:
                    raise self._status_error(method, path, ex.answer(response))
                try:
                    return skim(ex.chunks(response), rules, cap=MAX_BODY)
                except SkimError as exc:
                    if "larger than the cap" in str(exc):
                        raise ex.too_large(response, MAX_BODY) from None
                    raise ResponseValidationError(
                        method=method,
                        path=path,
                        status_code=response.status_code,
                        problem=f"the body is not the JSON expected ({exc})",
                    ) from None

    def _call(
        self,
        method: str,
        path: str,
        model: type[R],
        *,
        body: Request | None = None,
        params: dict[str, str] | None = None,
        creates: bool = False,
        rules: tuple[Rule, ...] = (),
    ) -> R:
        def attempt() -> R:
            if rules:
                found = self._skimmed(method, path, rules)
                return _validated(method, path, 200, found.data, model, found.thinned)
            response = self._send(method, path, body=body, params=params)
            return _parse(method, path, response, model)

        what = f"{method} {path}"
        try:
            return self._retry.call(attempt, creates=creates, what=what, deadline=self._deadline)
        except ApiConnectionError as exc:
            raise exc.located(self._base, self._endpoint_source) from None

    def _status_error(self, method: str, path: str, answer: Answer) -> ApiStatusError:
        return status_error(method, path, answer, secrets=(self._api_key,))

    # ------------------------------------------------------------------------------------ apps

    def get_app(self, app_id: str) -> AppResponse:
        """The app, its environments and its version history without the file lists, which
        grow with every deploy and are read one version at a time (``get_version``)."""
        path = f"/v1/apps/{_seg(app_id)}"
        app = self._call("GET", path, AppResponse, rules=HISTORY_WITHOUT_FILES)
        app._source = ("GET", path)
        return app

    def list_apps(self, *, limit: int = 1, slug: str | None = None) -> ListAppsResponse:
        """One page of the organization's apps (the cheapest call that needs a valid key);
        with ``slug``, the organization's app of that slug, if it has one."""
        params = {"limit": str(int(limit)), "offset": "0"}
        if slug is not None:
            params["slug"] = slug
        return self._call("GET", "/v1/apps", ListAppsResponse, params=params)

    def app_id_of_slug(self, slug: str) -> str | None:
        """The id of the organization's app with ``slug``; None when it has none."""
        apps = self.list_apps(limit=1, slug=slug).results
        return next(
            (
                a["app_id"]
                for a in apps
                if isinstance(a, dict)
                and a.get("slug") == slug
                and isinstance(a.get("app_id"), str)
            ),
            None,
        )

    def create_app(self, request: CreateAppRequest) -> AppResponse:
        """A new app (``POST /v1/apps``); a slug that is taken is a ``BadRequestError``."""
        return self._call("POST", "/v1/apps", AppResponse, body=request, creates=True)

    def update_app(self, app_id: str, request: UpdateAppRequest) -> AppResponse:
        """``PATCH /v1/apps/{app_id}``: the fields given replace the app's. Sending the same
        fields again leaves the same app, so it may be sent again."""
        path = f"/v1/apps/{_seg(app_id)}"
        return self._call("PATCH", path, AppResponse, body=request)

    def check_slug(self, app_id: str, slug: str) -> AppResponse:
        """Whether ``slug`` is free for the app, writing nothing (``PATCH ?dry_run=true``): the
        app unchanged, or a ``BadRequestError`` when it is taken."""
        path = f"/v1/apps/{_seg(app_id)}"
        body = UpdateAppRequest(slug=slug)
        params = {"dry_run": "true"}
        return self._call("PATCH", path, AppResponse, body=body, params=params)

    def delete_app(self, app_id: str) -> DeleteResponse:
        """``DELETE /v1/apps/{app_id}``: the app, its domains and its slug go at once. Sent
        again after it landed it answers 404, which a delete reads as done."""
        path = f"/v1/apps/{_seg(app_id)}"
        return self._call("DELETE", path, DeleteResponse)

    def add_domain(self, app_id: str, request: AddDomainRequest) -> DomainResponse:
        """A custom domain for the app, ``pending`` until verified; one taken by any app (this
        one too) is a ``BadRequestError``."""
        path = f"/v1/apps/{_seg(app_id)}/domains"
        return self._call("POST", path, DomainResponse, body=request, creates=True)

    def list_domains(self, app_id: str) -> ListDomainsResponse:
        """Every custom domain of the app with its status now (there is no GET of one)."""
        path = f"/v1/apps/{_seg(app_id)}/domains"
        return self._call("GET", path, ListDomainsResponse)

    def delete_domain(self, app_id: str, domain: str) -> DeleteResponse:
        # Sent again after it landed it answers 404, which a delete reads as done.
        path = f"/v1/apps/{_seg(app_id)}/domains/{_seg(domain)}"
        return self._call("DELETE", path, DeleteResponse)

    def verify_domain(self, app_id: str, domain: str) -> DomainResponse:
        """Ask the service to look for the domain's TXT record: ``verifying`` at once, and its
        worker checks DNS from then on. Asking again only starts the checks over."""
        path = f"/v1/apps/{_seg(app_id)}/domains/{_seg(domain)}/verify"
        return self._call("POST", path, DomainResponse)

    def get_upload_url(self, app_id: str, filename: str) -> UploadUrlResponse:
        # Minting a URL stores nothing, so it is safe to send again.
        body = UploadUrlRequest(filename=filename)
        path = f"/v1/apps/{_seg(app_id)}/deploy/upload-url"
        return self._call("POST", path, UploadUrlResponse, body=body)

    def deploy(self, app_id: str, request: DeployRequest) -> DeployResponse:
        path = f"/v1/apps/{_seg(app_id)}/deploy"
        return self._call("POST", path, DeployResponse, body=request, creates=True)

    def get_deploy(self, app_id: str, deploy_id: str) -> DeployStatusResponse:
        path = f"/v1/apps/{_seg(app_id)}/deploys/{_seg(deploy_id)}"
        return self._call("GET", path, DeployStatusResponse)

    @contextmanager
    def deploy_log_events(self, app_id: str, deploy_id: str) -> Iterator[Iterator[ServerSentEvent]]:
        """Open the deploy's SSE log stream, each line cut at ``MAX_SSE_LINE``, until the
        deadline; transport errors surface as ``ApiError``."""
        path = f"/v1/apps/{_seg(app_id)}/deploys/{_seg(deploy_id)}/logs/stream"
        headers = {**self._auth(), "Accept": "text/event-stream", "Cache-Control": "no-store"}
        lane = self._lane()
        with exchange(lane, self._deadline, "GET", path, None) as ex:
            request = lane.http.build_request(
                "GET",
                path,
                headers=headers,
                timeout=ex.timeouts(STREAM_TIMEOUT),
                extensions=lane.extensions,
            )
            with ex.streamed(request) as response:
                if response.is_error or response.is_redirect:
                    raise self._status_error("GET", path, ex.answer(response))
                yield EventReader().events(ex.chunks(response))

    def list_versions(self, app_id: str) -> VersionListResponse:
        """Every version, without their file lists (the list has no pages)."""
        path = f"/v1/apps/{_seg(app_id)}/versions"
        return self._call("GET", path, VersionListResponse, rules=HISTORY_WITHOUT_FILES)

    def get_version(
        self, app_id: str, version: int, *, files: int = 0, wanted: Iterable[str] = ()
    ) -> VersionDetailResponse:
        """One version, with at most ``files`` entries of its file list plus the paths
        ``wanted`` (``manifest_complete`` says whether the list came whole); never its
        source files."""
        path = f"/v1/apps/{_seg(app_id)}/versions/{int(version)}"
        rules = (
            Rule(("asset_manifest",), keep=files, wanted=frozenset(wanted)),
            Rule(("source_files",)),
        )
        return self._call("GET", path, VersionDetailResponse, rules=rules)

    def diff_versions(self, app_id: str, old: int, new: int) -> VersionDiffResponse:
        path = f"/v1/apps/{_seg(app_id)}/versions/{int(old)}/diff/{int(new)}"
        return self._call("GET", path, VersionDiffResponse)

    def download_version(self, app_id: str, version: int) -> DownloadUrlResponse:
        path = f"/v1/apps/{_seg(app_id)}/versions/{int(version)}/download"
        return self._call("GET", path, DownloadUrlResponse)

    def restore_version(
        self, app_id: str, version: int, environment: Environment
    ) -> RestoreVersionResponse:
        path = f"/v1/apps/{_seg(app_id)}/versions/{int(version)}/restore"
        body = RestoreVersionRequest(environment=environment)
        return self._call("POST", path, RestoreVersionResponse, body=body, creates=True)

    # --------------------------------------------------------------------------------- plugins

    def _plugins(self, namespace_id: str) -> str:
        return f"/v1/namespaces/{_seg(namespace_id)}/plugins"

    def create_plugin_upload(
        self, namespace_id: str, request: CreatePluginUploadRequest
    ) -> PluginPresignedUrlResponse:
        path = f"{self._plugins(namespace_id)}/uploads"
        return self._call("POST", path, PluginPresignedUrlResponse, body=request, creates=True)

    def confirm_plugin_upload(
        self, namespace_id: str, upload_id: str, request: ConfirmPluginUploadRequest
    ) -> ConfirmPluginUploadResponse:
        path = f"{self._plugins(namespace_id)}/uploads/{_seg(upload_id)}/confirm"
        return self._call("POST", path, ConfirmPluginUploadResponse, body=request, creates=True)

    def deploy_plugin(
        self, namespace_id: str, plugin_id: str, deployment_type: DeploymentType
    ) -> PluginDeployResponse:
        path = f"{self._plugins(namespace_id)}/{_seg(plugin_id)}/deploy"
        params: dict[str, str] = {"deployment_type": deployment_type}
        return self._call("POST", path, PluginDeployResponse, params=params, creates=True)

    def list_plugins(self, namespace_id: str) -> PluginListResponse:
        """The namespace's plugins (a key check: nothing of it is read)."""
        return self._call("GET", self._plugins(namespace_id), PluginListResponse)

    def get_plugin_status(self, namespace_id: str, plugin_id: str) -> PluginStatusResponse:
        path = f"{self._plugins(namespace_id)}/{_seg(plugin_id)}/status"
        return self._call("GET", path, PluginStatusResponse)

    def undeploy_plugin(self, namespace_id: str, plugin_id: str) -> PluginUndeployResponse:
        # Undeploying twice leaves the same end state, so it may be sent again.
        path = f"{self._plugins(namespace_id)}/{_seg(plugin_id)}/undeploy"
        return self._call("POST", path, PluginUndeployResponse)

    def delete_plugin(self, namespace_id: str, plugin_id: str) -> PluginDeleteResponse:
        path = f"{self._plugins(namespace_id)}/{_seg(plugin_id)}"
        return self._call("DELETE", path, PluginDeleteResponse)

    def get_plugin(
        self, namespace_id: str, plugin_id: str, *, with_download_url: bool = False
    ) -> PluginDetailResponse:
        path = f"{self._plugins(namespace_id)}/{_seg(plugin_id)}"
        params = {"return_presigned_urls": "true"} if with_download_url else None
        return self._call("GET", path, PluginDetailResponse, params=params)

    # --------------------------------------------------------------------------------- storage

    def put_object(
        self,
        url: str,
        body: Body,
        *,
        size: int,
        content_type: str,
        content_md5: str | None = None,
    ) -> StoredObject:
        """PUT ``size`` bytes of ``body`` (from its start) to a presigned storage URL, streamed,
        without the API key.

        Raises ``StorageError`` (``expired`` tells whether a fresh URL would help); a redirect
        is a refusal too, since a presigned PUT is never redirected to where it should go.
        """
        shown = _storage_path(url)
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        if content_md5:
            headers["Content-MD5"] = content_md5

        def chunks() -> Iterator[bytes]:
            body.seek(0)
            while block := body.read(UPLOAD_CHUNK):
                yield block

        def attempt() -> StoredObject:
            lane = self._lane()
            with exchange(lane, self._deadline, "PUT", shown, None) as ex:
                request = lane.http.build_request(
                    "PUT",
                    url,
                    content=ex.guarded(chunks()),
                    headers=headers,
                    timeout=ex.timeouts(self._timeout),
                    extensions=lane.extensions,
                )
                answer = ex.fetch(request, cap=MAX_ERROR_BODY)
            if answer.is_error or answer.is_redirect:
                raise storage_error("PUT", shown, answer)
            etag = answer.headers.get("ETag")
            return StoredObject(etag=etag.strip('"') if etag else None)

        # Overwriting the same key with the same bytes is harmless, so every failure may retry.
        what = f"PUT {shown}"
        return self._retry.call(attempt, creates=False, what=what, deadline=self._deadline)

    def download(self, url: str, target: IO[bytes], *, max_bytes: int) -> int:
        """GET a presigned storage URL into ``target`` (no API key is sent); returns the size.

        Raises ``StorageError`` on a refusal and ``ResponseValidationError`` when the body
        would pass ``max_bytes``, before more than that was written.
        """
        shown = _storage_path(url)

        def attempt() -> int:
            target.seek(0)
            target.truncate()
            written = 0
            lane = self._lane()
            with exchange(lane, self._deadline, "GET", shown, None) as ex:
                request = lane.http.build_request(
                    "GET", url, timeout=ex.timeouts(self._timeout), extensions=lane.extensions
                )
                with ex.streamed(request) as response:
                    if response.is_error or response.is_redirect:
                        answer = ex.answer(response)
                        raise storage_error("GET", shown, answer)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise _too_large(shown, response.status_code, max_bytes)
                    for block in ex.chunks(response):
                        written += len(block)
                        if written > max_bytes:
                            raise _too_large(shown, response.status_code, max_bytes)
                        target.write(block)
            return written

        what = f"GET {shown}"
        return self._retry.call(attempt, creates=False, what=what, deadline=self._deadline)


# ---------------------------------------------------------------------------------- helpers


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _storage_path(url: str) -> str:
    # The query string holds the signature; an error message shows only where the request went.
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path} (presigned storage URL)"


def _too_large(shown: str, status: int, cap: int) -> ResponseValidationError:
    return ResponseValidationError(
        method="GET", path=shown, status_code=status, problem=f"it is larger than {cap} bytes"
    )


def _parse(method: str, path: str, response: Answer, model: type[R]) -> R:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        start = response.text[:60].strip() if response.body else ""
        problem = (
            f"the body is not JSON (it starts with {start!r})" if start else "the body is empty"
        )
        raise ResponseValidationError(
            method=method, path=path, status_code=response.status_code, problem=problem
        ) from None
    return _validated(method, path, response.status_code, data, model)


def _validated(
    method: str,
    path: str,
    status: int,
    data: Any,
    model: type[R],
    thinned: Mapping[tuple[str | int, ...], int] | None = None,
) -> R:
    try:
        found = model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        ]
        raise ResponseValidationError(
            method=method, path=path, status_code=status, problem="; ".join(problems)
        ) from None
    if thinned and isinstance(found, VersionRecord):
        found._manifest_size = thinned.get(("asset_manifest",))
    return found
