"""Object storage that behaves like S3 presigned URLs: signed, expiring, streamed to disk.

An object is written under a temporary name in ``.partial/`` and renamed into place only when
it is whole, so a half-written upload is never an object; whatever a killed emulator left
there is removed when the next one starts. With a data dir, URLs are signed with a key kept
in it, so a URL handed out before a restart still works after it.
"""

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

from .clock import Clock, SystemClock
from .disk import FULL, writing

CHUNK: Final = 1024 * 1024
AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"  # SigV4's ISO 8601 basic format
PARTIAL: Final = ".partial"
"""Where objects are written until they are whole; never an object's own folder (two hex
digits)."""
KEY_FILE: Final = "signing-key"
SECRET_BYTES: Final = 32


def kept_secret(folder: Path) -> bytes:
    """The key URLs are signed with, kept in ``folder`` (mode 0600: only its owner can read
    it, as only the emulator may sign), made on first use. Written whole under another name
    and linked into place, so two emulators starting on one folder agree on one key; a file
    of the wrong length (edited by hand) is replaced."""
    path = folder / KEY_FILE
    try:
        found = path.read_bytes()
    except FileNotFoundError:
        found = b""
    if len(found) == SECRET_BYTES:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return found
    fresh = secrets.token_bytes(SECRET_BYTES)
    tmp = path.with_name(f"{KEY_FILE}.{secrets.token_hex(4)}.tmp")
    try:
        with writing():
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "wb") as out:
                out.write(fresh)
                out.flush()
                os.fsync(out.fileno())
            if found:
                os.replace(tmp, path)
                return fresh
            try:
                os.link(tmp, path)
            except FileExistsError:
                return kept_secret(folder)  # another emulator made it meanwhile
            except OSError as exc:
                if exc.errno in FULL:
                    raise
                os.replace(tmp, path)  # a file system without hard links
    finally:
        tmp.unlink(missing_ok=True)
    return fresh


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
    """Objects on disk under ``root``; URLs signed with ``secret`` (by default one of this
    process's own) and dated by ``clock``'s wall time."""

    def __init__(
        self,
        root: Path,
        public_url: str,
        secret: bytes | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = root
        self.partial = root / PARTIAL
        self.partial.mkdir(parents=True, exist_ok=True)
        self.public_url = public_url.rstrip("/")
        self._secret = secret or secrets.token_bytes(SECRET_BYTES)
        self.clock: Clock = clock or SystemClock()
        self._drop_partial()

    def _drop_partial(self) -> None:
        """Uploads a killed emulator left half-written: in ``.partial/``, and beside the
        objects where an earlier release wrote them (``<object>.<hex>.part``)."""
        for leftover in [*self.partial.iterdir(), *self.root.glob("??/*.part")]:
            leftover.unlink(missing_ok=True)

    def _scratch(self, target: Path) -> Path:
        return self.partial / f"{target.name}.{secrets.token_hex(4)}"

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
        at = self.clock.time() if signed_at is None else signed_at
        when = time.strftime(AMZ_DATE, time.gmtime(at))
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
        if self.clock.time() > start + expires_in:
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
        tmp = self._scratch(target)
        digest = hashlib.md5()  # noqa: S324 - S3's ETag is an MD5, not a security control
        try:
            with writing(), tmp.open("wb") as handle:
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
            with writing():
                target.parent.mkdir(parents=True, exist_ok=True)
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
        tmp = self._scratch(dst)
        try:
            with writing():
                try:
                    os.link(src, tmp)
                except FileNotFoundError:
                    return None
                except OSError as exc:  # a file system without hard links
                    if exc.errno in FULL:
                        raise
                    shutil.copyfile(src, tmp)
                with tmp.open("rb") as handle:
                    described = self.describe(source, handle)
                    info = os.fstat(handle.fileno())
                dst.parent.mkdir(parents=True, exist_ok=True)
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
    # another file. A record that cannot be written (a full disk) is computed again when read.

    def _remember(self, target: Path, info: os.stat_result, md5_hex: str) -> None:
        record = _record_of(target)
        tmp = self._scratch(record)
        try:
            tmp.write_text(json.dumps({"md5": md5_hex, **_identity(info)}), encoding="utf-8")
            os.replace(tmp, record)
        except OSError as exc:
            if exc.errno not in FULL:
                raise
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
