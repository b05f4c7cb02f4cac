"""Object storage that behaves like S3 presigned URLs: signed, expiring, streamed to disk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode


class StorageRefusal(Exception):
    """An S3-style refusal: status, ``<Code>`` and ``<Message>``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def xml(self, key: str) -> bytes:
        request_id = secrets.token_hex(8).upper()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<Key>{key}</Key><RequestId>{request_id}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    md5_hex: str

    @property
    def etag(self) -> str:
        return f'"{self.md5_hex}"'


class ObjectStore:
    """Objects on disk under ``root``; URLs signed with a per-process secret."""

    def __init__(self, root: Path, public_url: str, secret: bytes | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_url = public_url.rstrip("/")
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, method: str, key: str, expires: int, content_type: str) -> str:
        text = f"{method}\n{key}\n{expires}\n{content_type}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def presign(self, method: str, key: str, *, expires_in: int, content_type: str = "") -> str:
        expires = int(time.time()) + expires_in
        query = {
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "content-type" if content_type else "host",
            "X-Amz-Signature": self._sign(method, key, expires, content_type),
        }
        if content_type:
            query["X-Emu-Content-Type"] = content_type
        return f"{self.public_url}/_storage/{quote(key)}?{urlencode(query)}"

    def verify(self, method: str, key: str, query: dict[str, str], content_type: str) -> None:
        """Raise ``StorageRefusal`` unless the signature, expiry and content type all hold."""
        try:
            expires = int(query["X-Amz-Expires"])
            signature = query["X-Amz-Signature"]
        except (KeyError, ValueError):
            raise StorageRefusal(
                403, "AccessDenied", "Query-string authentication required"
            ) from None
        signed_type = query.get("X-Emu-Content-Type", "")
        expected = self._sign(method, key, expires, signed_type)
        if not hmac.compare_digest(expected, signature):
            raise StorageRefusal(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
            )
        if time.time() > expires:
            raise StorageRefusal(403, "AccessDenied", "Request has expired")
        if method == "PUT" and signed_type and content_type.split(";")[0].strip() != signed_type:
            raise StorageRefusal(
                403,
                "SignatureDoesNotMatch",
                f"The Content-Type {content_type or '(none)'} is not the signed {signed_type}",
            )

    def path(self, key: str) -> Path:
        safe = hashlib.sha256(key.encode()).hexdigest()
        return self.root / safe[:2] / safe

    async def write(
        self, key: str, chunks: AsyncIterator[bytes], *, content_md5: str | None
    ) -> StoredObject:
        """Stream ``chunks`` to disk; a wrong ``Content-MD5`` leaves the old object in place."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        digest = hashlib.md5()  # noqa: S324 - S3's ETag is an MD5, not a security control
        size = 0
        try:
            with tmp.open("wb") as handle:
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if content_md5 is not None:
                try:
                    sent = base64.b64decode(content_md5, validate=True)
                except ValueError:
                    raise StorageRefusal(
                        400, "InvalidDigest", "The Content-MD5 you specified is not valid"
                    ) from None
                if sent != digest.digest():
                    raise StorageRefusal(
                        400,
                        "BadDigest",
                        "The Content-MD5 you specified did not match what we received",
                    )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(key=key, size=size, md5_hex=digest.hexdigest())

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def md5(self, key: str) -> str:
        digest = hashlib.md5()  # noqa: S324 - ETag
        with self.path(key).open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
