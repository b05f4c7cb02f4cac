"""Presigned object storage (an S3 stand-in): PUT and GET by signed, expiring URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, BinaryIO

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import Receive, Scope, Send

from ..context import Context, context
from ..storage import CHUNK, ObjectStore, StorageRefusal


class AnyKey(Convertor[str]):
    """An object key as S3 takes it: any characters, newlines included (Starlette's ``path``
    stops at one, which made a key with a newline unreachable through its own URL)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("key", AnyKey())
router = APIRouter(prefix="/_storage")
Ctx = Annotated[Context, Depends(context)]


def _refused(refusal: StorageRefusal, key: str) -> Response:
    return Response(refusal.xml(key), status_code=refusal.status, media_type="application/xml")


def _no_such_key() -> StorageRefusal:
    return StorageRefusal(404, "NoSuchKey", "The specified key does not exist.")


@router.put("/{key:key}")
async def storage_put(ctx: Ctx, key: str, request: Request) -> Response:
    try:
        ctx.objects.verify(
            "PUT", key, dict(request.query_params), request.headers.get("content-type", "")
        )
        stored = await ctx.objects.write(
            key, request.stream(), content_md5=request.headers.get("content-md5")
        )
    except StorageRefusal as refusal:
        return _refused(refusal, key)
    return Response(b"", status_code=200, headers={"ETag": stored.etag})


@router.get("/{key:key}")
def storage_get(ctx: Ctx, key: str, request: Request) -> Response:
    try:
        ctx.objects.verify("GET", key, dict(request.query_params), "")
        if not ctx.objects.exists(key):
            raise _no_such_key()
    except StorageRefusal as refusal:
        return _refused(refusal, key)
    return ObjectResponse(ctx.objects, key)


class ObjectResponse(StreamingResponse):
    """A stored object sent from one open file in reads of ``CHUNK``: memory stays flat
    whatever its size, and the length and ETag describe exactly the bytes sent, even when a
    PUT replaces the object meanwhile."""

    def __init__(self, objects: ObjectStore, key: str) -> None:
        super().__init__(self._chunks(), media_type="application/zip")
        self._objects = objects
        self._key = key
        self._handle: BinaryIO | None = None
        self._left = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # Opened here on the loop, not in a worker thread: a worker's result is dropped
            # when its caller is cancelled, and a file dropped that way is closed only by the
            # garbage collector.
            handle = self._objects.open(self._key)
        except FileNotFoundError:  # deleted since the route looked
            await _refused(_no_such_key(), self._key)(scope, receive, send)
            return
        with handle:
            stored = await anyio.to_thread.run_sync(self._objects.describe, self._key, handle)
            self.headers["content-length"] = str(stored.size)
            self.headers["etag"] = stored.etag
            self._handle, self._left = handle, stored.size
            await super().__call__(scope, receive, send)

    async def _chunks(self) -> AsyncIterator[bytes]:
        handle = self._handle
        assert handle is not None
        while self._left > 0:
            block = await anyio.to_thread.run_sync(handle.read, min(CHUNK, self._left))
            if not block:
                raise OSError(f"{self._key} ended {self._left} bytes early")
            self._left -= len(block)
            yield block
