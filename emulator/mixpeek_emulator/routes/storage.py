"""Presigned object storage (an S3 stand-in): PUT and GET by signed, expiring URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from ..context import Context, context
from ..storage import StorageRefusal

router = APIRouter(prefix="/_storage")
Ctx = Annotated[Context, Depends(context)]


def _refused(refusal: StorageRefusal, key: str) -> Response:
    return Response(refusal.xml(key), status_code=refusal.status, media_type="application/xml")


@router.put("/{key:path}")
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


@router.get("/{key:path}")
def storage_get(ctx: Ctx, key: str, request: Request) -> Response:
    try:
        ctx.objects.verify("GET", key, dict(request.query_params), "")
        if not ctx.objects.exists(key):
            raise StorageRefusal(404, "NoSuchKey", "The specified key does not exist.")
    except StorageRefusal as refusal:
        return _refused(refusal, key)
    data = ctx.objects.path(key).read_bytes()
    headers = {"ETag": f'"{ctx.objects.md5(key)}"'}
    return Response(data, media_type="application/zip", headers=headers)
