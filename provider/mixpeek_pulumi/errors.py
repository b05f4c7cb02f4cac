"""Every error the provider raises, each a complete one-line sentence first, secrets redacted.

The tree::

    MixpeekError
    ├── ConfigError                 missing API key or bad endpoint; names where each is read from
    ├── InputError                  an input the program set is invalid (checked before anything)
    ├── StateError                  the stack state of a resource does not load (names the fields)
    ├── BundleError                 a bundle or plugin source that cannot be packaged (names it)
    ├── ApiError                    a call to the API failed (method, path, request id)
    │   ├── ApiConnectionError      the transport failed; ``sent`` says whether the request left
    │   │   └── ApiTimeoutError     also: an answer not complete within its time budget
    │   │       └── ApiInterruptedError     the engine's Cancel (Ctrl-C) cut the request short
    │   ├── ApiStatusError          the server answered with an error status (status, type, code)
    │   │   ├── BadRequestError             400
    │   │   ├── AuthenticationError         401
    │   │   ├── PermissionDeniedError       403 (quota exceeded, realtime not allowed, ...)
    │   │   ├── NotFoundError               404
    │   │   ├── MethodNotAllowedError       405
    │   │   ├── ConflictError               409
    │   │   ├── UnprocessableEntityError    422 (``validation_errors`` lists each field)
    │   │   ├── RateLimitError              429
    │   │   ├── ServerError                 5xx
    │   │   └── StorageError                the presigned storage PUT was refused (S3 XML body)
    │   └── ResponseValidationError a 2xx body that does not fit the documented shape
    │       └── ResponseTooLargeError   a body over its cap, read no further
    ├── DeployError                 the API worked; the deploy did not
    │   ├── DeployFailedError       terminal failure: id, status, reason, redacted log tail
    │   └── DeployTimeoutError      the resource's own deadline passed: id, last status seen
    └── ResourceError               any other failure of a resource operation, headed by the
                                    resource's kind and name (the cause stays in __cause__)

The engine prints ``ExcType: str(exc)`` as the last line of a provider traceback, so ``str()`` of
every error starts with a full sentence that names what failed, and never contains the API key
nor a raw control character from a file name (``safe_name``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()

REDACTED = "[REDACTED]"
# Shapes that look like credentials even when we were never told the value; the first group
# (where there is one) is what stays.
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@"), rf"\1{REDACTED}@"),  # URL userinfo
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), rf"\1{REDACTED}"),
    (re.compile(r"\bsk_[A-Za-z0-9_\-]{6,}"), REDACTED),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"), rf"\1{REDACTED}"),
    (
        re.compile(
            r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"
        ),
        rf"\1{REDACTED}",
    ),
)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that every later message and log line has it removed: the
    value as given, as ``repr`` would quote it, and for a URL its host and its path, which a
    message may name apart (``<host> could not be looked up``)."""
    if not value or len(value) < 4:
        return
    forms = {value, repr(value)[1:-1]}
    if "://" in value:
        parts = urlsplit(value)
        forms |= {parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query else "")}
    with _SECRETS_LOCK:
        _SECRETS.update(form for form in forms if len(form) >= 4)


def texts(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (a secret object's fields, a list's items)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from texts(item)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Return ``text`` with registered secrets and credential-looking tokens replaced."""
    with _SECRETS_LOCK:
        secrets = sorted({*_SECRETS, *(s for s in extra if s)}, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def safe_name(name: str, most: int | None = None) -> str:
    """A name from someone's files as one line of output shows it, in a refusal, a log line or
    a preview alike: each character a terminal would act on instead of showing (controls, ANSI
    escapes, bidirectional overrides, zero-width and line separators: whatever Python does not
    call printable) is written as its escape (``\\x1b``, ``\\u202e``), so a name can neither
    forge a line nor recolour or reorder one. With ``most``, a longer result is cut in its
    middle, keeping the end, where the file's own name is."""
    if not name.isprintable():
        name = "".join(c if c.isprintable() else _escaped(c) for c in name)
    if most is not None and len(name) > most:
        head = (most - 1) // 2
        name = f"{name[:head]}…{name[len(name) - (most - 1 - head) :]}"
    return name


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return text
    return text if text[-1] in ".!?" else text + "."


def first_line(exc: BaseException) -> str:
    """An error's first line without its full stop, to quote inside another sentence."""
    return str(exc).splitlines()[0].rstrip(".") if str(exc) else type(exc).__name__


class MixpeekError(Exception):
    """Base of every error this package raises."""

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message.splitlines()[0]!r})"


class ConfigError(MixpeekError):
    """The provider is not configured well enough to call the API."""


class InputError(MixpeekError):
    """A resource's input is invalid: the resource, the field and why, one per line."""

    def __init__(self, kind: str, name: str, problems: Iterable[tuple[str, str]]) -> None:
        listed = list(problems)
        self.problems = listed
        super().__init__("\n".join(f"{kind} '{name}': {where}: {why}" for where, why in listed))


class StateError(MixpeekError):
    """A resource's stored state does not load: names the fields and how to repair it."""


class BundleError(MixpeekError):
    """A bundle or plugin source cannot be packaged."""

    def __init__(self, path: str, reason: str, noun: str = "bundle") -> None:
        self.path = path
        self.reason = reason
        self.noun = noun
        # Escaped here, once for every refusal: a path or reason names files the user controls.
        super().__init__(
            _sentence(f"The {noun} at {safe_name(path)} cannot be used: {safe_name(reason)}")
        )

    def called(self, noun: str) -> BundleError:
        """The same refusal, naming what the user called the thing (a plugin source)."""
        return BundleError(self.path, self.reason, noun)


class ApiError(MixpeekError):
    """A call to the Mixpeek API failed."""

    def __init__(
        self, message: str, *, method: str, path: str, request_id: str | None = None
    ) -> None:
        self.method = method
        self.path = path
        self.request_id = request_id
        super().__init__(message)


class ApiConnectionError(ApiError):
    """The request could not be completed at the transport level.

    ``sent`` is False only when the request provably never reached the server (connect failures),
    which is what makes it safe to retry a request that creates something.
    """

    def __init__(self, *, method: str, path: str, reason: str, sent: bool) -> None:
        self.sent = sent
        self.reason = reason
        where = " (after it was sent)" if sent else ""
        super().__init__(
            _sentence(f"{method} {path} could not reach the Mixpeek API{where}: {reason}"),
            method=method,
            path=path,
        )

    def located(self, base_url: str, source: str) -> ApiConnectionError:
        """This error naming the endpoint it tried and the setting that chose it, with what
        to do; timeouts and interruptions are about time, not the address, and stay as
        they are."""
        if type(self) is not ApiConnectionError:
            return self
        where = " (after it was sent)" if self.sent else ""
        found = ApiConnectionError(method=self.method, path=self.path, reason="", sent=self.sent)
        found.reason = self.reason
        found.message = redact(
            _sentence(
                f"{self.method} {self.path} could not reach the Mixpeek API at {base_url}, "
                f"the address {source} names{where}: {self.reason.rstrip('.')}; check that "
                f"the address is right and reachable from here, or {_fix(source)}"
            )
        )
        found.args = (found.message,)
        return found


def _fix(source: str) -> str:
    """How to change the endpoint that came from ``source`` (``ProviderConfig``'s words)."""
    if "base_url" in source:
        return "change the resource's `base_url`"
    if "MIXPEEK_BASE_URL" in source:
        return "change MIXPEEK_BASE_URL (or set `mixpeek:baseUrl`, which wins)"
    if "mixpeek:baseUrl" in source:
        return "change it with `pulumi config set mixpeek:baseUrl <url>`"
    return "set your Mixpeek host with `pulumi config set mixpeek:baseUrl <url>`"


class ApiTimeoutError(ApiConnectionError):
    """The request timed out."""


class ApiInterruptedError(ApiTimeoutError):
    """The engine asked the provider to stop (``Cancel``, Ctrl-C) before or while the request
    was under way: it ends as a timeout does, saying it was interrupted."""

    def __init__(self, *, method: str, path: str, sent: bool) -> None:
        self.sent = sent
        self.reason = "the operation was interrupted"
        where = "after it was sent" if sent else "before it was sent"
        ApiError.__init__(
            self,
            _sentence(
                f"{method} {path} was interrupted {where}: the engine asked the provider to stop "
                "(Ctrl-C or a cancelled update), so it was not waited for; run `pulumi up` again "
                "to finish"
            ),
            method=method,
            path=path,
        )


class ApiStatusError(ApiError):
    """The server answered with an error status."""

    status_code: int = 0

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        message: str,
        error_type: str | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        validation_errors: list[str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.server_message = redact(message)
        self.error_type = error_type
        self.code = code
        self.details = dict(details or {})
        self.retry_after = retry_after
        self.validation_errors = validation_errors or []
        kind = error_type or "error"
        extras = [f"code {code}"] if code else []
        if request_id:
            extras.append(f"request id {request_id}")
        suffix = f" ({', '.join(extras)})" if extras else ""
        headline = _sentence(
            f"Mixpeek API answered {method} {path} with HTTP {status_code} {kind}{suffix}: "
            f"{message or 'no reason given'}"
        )
        body = "\n".join(f"  - {v}" for v in self.validation_errors)
        super().__init__(
            headline + ("\n" + body if body else ""),
            method=method,
            path=path,
            request_id=request_id,
        )

    @property
    def retryable_hint(self) -> bool | None:
        """The server's own ``error.details.retryable`` flag, when it sent one."""
        value = self.details.get("retryable")
        return value if isinstance(value, bool) else None


class BadRequestError(ApiStatusError):
    status_code = 400


class AuthenticationError(ApiStatusError):
    status_code = 401


class PermissionDeniedError(ApiStatusError):
    status_code = 403


class NotFoundError(ApiStatusError):
    status_code = 404


class MethodNotAllowedError(ApiStatusError):
    status_code = 405


class ConflictError(ApiStatusError):
    status_code = 409


class UnprocessableEntityError(ApiStatusError):
    status_code = 422


class RateLimitError(ApiStatusError):
    status_code = 429


class ServerError(ApiStatusError):
    status_code = 500


class StorageError(ApiStatusError):
    """The presigned storage URL refused the upload; ``expired`` says a fresh URL would help."""

    @property
    def expired(self) -> bool:
        text = f"{self.code} {self.server_message}".lower()
        return "expired" in text or (self.code == "AccessDenied" and "expire" in text)


_STATUS_ERRORS: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[ApiStatusError]:
    """The one place an HTTP status maps to an error class."""
    if status_code >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status_code, ApiStatusError)


class ResponseValidationError(ApiError):
    """A successful response whose body does not have the documented shape."""

    def __init__(self, *, method: str, path: str, status_code: int, problem: str) -> None:
        self.status_code = status_code
        super().__init__(
            _sentence(
                f"Mixpeek API answered {method} {path} with HTTP {status_code} "
                f"but the body is not what the API documents: {problem}"
            ),
            method=method,
            path=path,
        )


class UnreadableEncodingError(ResponseValidationError):
    """A body compressed in an encoding the provider cannot read (brotli, zstd)."""


class ResponseTooLargeError(ResponseValidationError):
    """An answer longer than its cap: it is read no further, so no server can fill memory."""

    def __init__(
        self, *, method: str, path: str, status_code: int, cap: str, declared: str = ""
    ) -> None:
        self.status_code = status_code
        self.cap = cap
        size = f"of {declared}" if declared else f"over {cap}"
        ApiError.__init__(
            self,
            _sentence(
                f"{method} {path} answered HTTP {status_code} with a body {size}, more than "
                f"the {cap} the provider reads of any answer to that request, so it stopped "
                "reading it and changed nothing; report this line to Mixpeek support"
            ),
            method=method,
            path=path,
        )


class DeployError(MixpeekError):
    """A deploy, rollout or validation that the API accepted did not end well.

    Built whole, once (``Context.failed`` and ``Context.timed_out`` build every one the
    deploy layer raises) and read-only after: the log tail and the partial state are part of
    what it says, never added to it later."""

    def __init__(
        self,
        headline: str,
        *,
        resource: str,
        status: str,
        reason: str,
        subject_id: str = "",
        log_tail: Iterable[str] = (),
        partial: Any = None,
        deploy_id: str = "",
    ) -> None:
        self._resource = resource
        self._subject_id = subject_id or deploy_id
        self._status = status
        self._reason = reason
        self._headline = _sentence(headline)
        self._log_tail = tuple(redact(line) for line in log_tail)
        self._partial = partial
        super().__init__(self._compose())

    @property
    def resource(self) -> str:
        return self._resource

    @property
    def subject_id(self) -> str:
        """The id of what failed: a deploy, a plugin, an upload."""
        return self._subject_id

    @property
    def deploy_id(self) -> str:
        """``subject_id``, under the name it had when only deploys failed."""
        return self._subject_id

    @property
    def status(self) -> str:
        return self._status

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def headline(self) -> str:
        return self._headline

    @property
    def log_tail(self) -> list[str]:
        return list(self._log_tail)

    @property
    def partial(self) -> Any:
        """What exists at the service so far (a state), for a front door that can keep it."""
        return self._partial

    def _compose(self) -> str:
        text = self._headline
        if self._log_tail:
            text += f"\nLast {len(self._log_tail)} log lines:\n" + "\n".join(
                f"  | {line}" for line in self._log_tail
            )
        return text


class DeployFailedError(DeployError):
    """The deploy reached a terminal failure."""


class DeployTimeoutError(DeployError):
    """The resource's own deadline passed before the deploy reached a terminal status."""


class ResourceError(MixpeekError):
    """A resource operation failed: the cause's message, headed by the resource it hit."""

    def __init__(self, kind: str, name: str, cause: BaseException) -> None:
        self.kind = kind
        self.name = name
        text = str(cause) or type(cause).__name__
        if isinstance(cause, OSError) and cause.strerror:
            named = safe_name(str(cause.filename)) if cause.filename else ""
            text = f"{cause.strerror}: {named}" if named else cause.strerror
        super().__init__(
            f"{kind} '{name}': {_sentence(text.splitlines()[0])}"
            + "".join("\n" + line for line in text.splitlines()[1:])
        )
