"""Object storage that behaves like S3 presigned URLs: signed, expiring, streamed to disk."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

CHUNK: Final = 1024 * 1024
AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"  # SigV4's ISO 8601 basic format


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
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>"
            f"<Key>{escape(key)}</Key><RequestId>{request_id}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    md5_hex: str
    modified: float

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

    def _sign(self, method: str, key: str, signed_at: str, expires_in: int, ctype: str) -> str:
        text = f"{method}\n{key}\n{signed_at}\n{expires_in}\n{ctype}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def presign(
        self,
        method: str,
        key: str,
        *,
        expires_in: int,
        content_type: str = "",
        signed_at: float | None = None,
    ) -> str:
        """A URL valid for ``expires_in`` seconds from ``signed_at`` (now by default), spelled
        as S3 spells a SigV4 URL: ``X-Amz-Date`` and ``X-Amz-Expires`` in seconds."""
        when = time.strftime(AMZ_DATE, time.gmtime(time.time() if signed_at is None else signed_at))
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": when,
            "X-Amz-Expires": str(expires_in),
            "X-Amz-SignedHeaders": "content-type" if content_type else "host",
            "X-Amz-Signature": self._sign(method, key, when, expires_in, content_type),
        }
        if content_type:
            query["X-Emu-Content-Type"] = content_type
        return f"{self.public_url}/_storage/{quote(key)}?{urlencode(query)}"

    def verify(self, method: str, key: str, query: dict[str, str], content_type: str) -> None:
        """Raise ``StorageRefusal`` unless the signature, expiry and content type all hold."""
        try:
            signed_at = query["X-Amz-Date"]
            expires_in = int(query["X-Amz-Expires"])
            signature = query["X-Amz-Signature"]
            start = calendar.timegm(time.strptime(signed_at, AMZ_DATE))
        except (KeyError, ValueError):
            raise StorageRefusal(
                403, "AccessDenied", "Query-string authentication required"
            ) from None
        signed_type = query.get("X-Emu-Content-Type", "")
        expected = self._sign(method, key, signed_at, expires_in, signed_type)
        if not hmac.compare_digest(expected, signature):
            raise StorageRefusal(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
            )
        if time.time() > start + expires_in:
            raise StorageRefusal(403, "AccessDenied", "Request has expired")
        # The signed header must come back as signed, parameters included, as S3 has it.
        if method == "PUT" and signed_type and content_type.strip() != signed_type.strip():
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
        """Stream ``chunks`` to disk; a wrong ``Content-MD5`` leaves the old object in place.
        The ETag computed on the way in is kept beside the object, never read back."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        digest = hashlib.md5()  # noqa: S324 - S3's ETag is an MD5, not a security control
        try:
            with tmp.open("wb") as handle:
                async for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
                # Taken from the open file, not the path: a PUT racing this one may have
                # replaced the path by the time the metadata is written. A rename keeps all
                # of these.
                info = os.fstat(handle.fileno())
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
        stored = StoredObject(key, info.st_size, digest.hexdigest(), info.st_mtime)
        self._remember(target, info, stored.md5_hex)
        return stored

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        """The object for reading; ``FileNotFoundError`` if there is none."""
        return self.path(key).open("rb")

    def stored(self, key: str) -> StoredObject | None:
        """Size, ETag and time of the object, or None if there is none."""
        try:
            handle = self.open(key)
        except FileNotFoundError:
            return None
        with handle:
            return self.describe(key, handle)

    def describe(self, key: str, handle: BinaryIO) -> StoredObject:
        """The object open in ``handle``: its ETag as recorded at upload. It is computed again
        (and recorded) only when the record is not of this very file: an object written before
        records were kept, or a crash between the object's rename and its record's."""
        info = os.fstat(handle.fileno())
        md5_hex = self._recalled(self.path(key), info)
        if md5_hex is None:
            digest = hashlib.md5()  # noqa: S324 - ETag
            handle.seek(0)
            while block := handle.read(CHUNK):
                digest.update(block)
            handle.seek(0)
            md5_hex = digest.hexdigest()
            self._remember(self.path(key), info, md5_hex)
        return StoredObject(key, info.st_size, md5_hex, info.st_mtime)

    def freeze(self, source: str, target: str) -> StoredObject | None:
        """A copy of ``source`` at ``target`` that no later PUT to ``source`` can change, or
        None when there is no ``source``. It is a hard link where the disk allows: a PUT
        replaces the file a key names and never writes into it, so the copy keeps the bytes."""
        src, dst = self.path(source), self.path(target)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f"{dst.name}.{secrets.token_hex(4)}.part")
        try:
            try:
                os.link(src, tmp)
            except FileNotFoundError:
                return None
            except OSError:  # a file system without hard links
                shutil.copyfile(src, tmp)
            with tmp.open("rb") as handle:
                described = self.describe(source, handle)
                info = os.fstat(handle.fileno())
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        self._remember(dst, info, described.md5_hex)
        return StoredObject(target, described.size, described.md5_hex, described.modified)

    def delete(self, key: str) -> None:
        target = self.path(key)
        target.unlink(missing_ok=True)
        _record_of(target).unlink(missing_ok=True)

    # A record names the file it describes (inode, size, mtime): one left behind by a crash, or
    # by two PUTs of one key writing their records out of order, never lends its ETag to
    # another file.

    def _remember(self, target: Path, info: os.stat_result, md5_hex: str) -> None:
        record = _record_of(target)
        tmp = record.with_name(f"{record.name}.{secrets.token_hex(4)}.part")
        try:
            tmp.write_text(json.dumps({"md5": md5_hex, **_identity(info)}), encoding="utf-8")
            os.replace(tmp, record)
        finally:
            tmp.unlink(missing_ok=True)

    def _recalled(self, target: Path, info: os.stat_result) -> str | None:
        try:
            record = json.loads(_record_of(target).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or any(
            record.get(k) != v for k, v in _identity(info).items()
        ):
            return None
        md5_hex = record.get("md5")
        return md5_hex if isinstance(md5_hex, str) else None


def _record_of(target: Path) -> Path:
    return target.with_name(f"{target.name}.meta")


def _identity(info: os.stat_result) -> dict[str, int]:
    return {"inode": info.st_ino, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
