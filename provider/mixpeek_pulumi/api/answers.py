"""What an HTTP error answer says, read into the typed error a caller raises: the API's
``ErrorResponse`` envelope, FastAPI's ``HTTPValidationError``, plain ``detail`` text, or storage's
XML, and anything else (HTML from a proxy, no body, a cut body) described for what it is. The
messages are redacted here, before an error holds them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import pydantic

from ..errors import ApiStatusError, StorageError, redact, status_error_class
from ..sizes import size_text
from .models import ErrorResponse
from .retry import parse_retry_after
from .transport import MAX_ERROR_BODY, Answer


def status_error(
    method: str, path: str, answer: Answer, *, secrets: tuple[str, ...]
) -> ApiStatusError:
    """The typed error of the API's refusal ``answer``, its class chosen by the status."""
    info = _error_info(answer, secrets=secrets)
    return status_error_class(answer.status_code)(method=method, path=path, **info)


def storage_error(method: str, path: str, answer: Answer) -> StorageError:
    """The error of presigned storage's refusal ``answer``."""
    return StorageError(method=method, path=path, **_storage_error_info(answer))


_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _error_response(data: Any) -> ErrorResponse | None:
    """The body as the API's ``ErrorResponse`` (also when an older shape nests it in
    ``detail``), or None when it is something else."""
    if isinstance(data, dict) and isinstance(data.get("detail"), dict):
        data = data["detail"]
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return None
    try:
        return ErrorResponse.model_validate(data)
    except pydantic.ValidationError:
        return None


def _validation_lines(items: Any, *, fastapi: bool) -> list[str]:
    lines = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        where = item.get("loc") if fastapi else (item.get("location") or item.get("loc") or "")
        if isinstance(where, list):
            where = ".".join(str(p) for p in where)
        said = item.get("msg") if fastapi else (item.get("message") or item.get("msg"))
        lines.append(f"{where}: {said} ({item.get('type')})")
    return lines


@dataclass(frozen=True)
class _ErrorBody:
    """What an error body says, whichever of the shapes the API uses it came in."""

    message: str = ""
    error_type: str | None = None
    code: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    validation: tuple[str, ...] = ()


def _error_body(response: Answer) -> _ErrorBody:
    """The ``ErrorResponse`` envelope, FastAPI's ``HTTPValidationError`` or plain ``detail``
    text; anything else is described for what it is (HTML from a proxy, no body, ...)."""
    try:
        data: Any = None if response.cut else response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    parsed = _error_response(data)
    if parsed is not None:
        details = dict(parsed.error.details or {})
        return _ErrorBody(
            parsed.error.message,
            parsed.error.type,
            parsed.error.code,
            details,
            tuple(_validation_lines(details.get("validation_errors"), fastapi=False)),
        )
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, list):
        lines = tuple(_validation_lines(detail, fastapi=True))
        return _ErrorBody(error_type="ValidationError", validation=lines)
    if isinstance(detail, str):
        return _ErrorBody(message=detail)
    return _ErrorBody(message=_describe_foreign_body(response))


def _explained(body: _ErrorBody, response: Answer) -> str:
    """The body's message, or what its validation errors and status amount to."""
    message = body.message
    extra = [v.split(":")[0] for v in body.validation if "extra_forbidden" in v]
    if extra:
        fields = ", ".join(extra)
        message = f"the request has fields the API does not accept ({fields}); " + (
            message or "unknown keys are refused"
        )
    elif body.validation and not message:
        message = "the request failed validation"
    if response.is_redirect and not message:
        message = f"a redirect to {response.headers.get('location', 'nowhere')!r}"
    return message


def _error_info(response: Answer, *, secrets: tuple[str, ...]) -> dict[str, Any]:
    """Read the ``ErrorResponse`` / ``HTTPValidationError`` body, or describe what came instead."""
    body = _error_body(response)
    request_id = response.headers.get("x-request-id") or (
        str(body.details["request_id"]) if body.details.get("request_id") else None
    )
    return {
        "status_code": response.status_code,
        "message": redact(_explained(body, response), secrets),
        "error_type": body.error_type,
        "code": body.code,
        "details": body.details,
        "request_id": request_id,
        "retry_after": parse_retry_after(response.headers.get("retry-after")),
        "validation_errors": [redact(v, secrets) for v in body.validation],
    }


def _describe_foreign_body(response: Answer) -> str:
    text = response.text.strip() if response.body else ""
    if response.is_redirect:
        return f"a redirect to {redact(response.headers.get('location', 'nowhere'))!r}"
    if response.cut:
        return (
            f"its error body is over {size_text(MAX_ERROR_BODY)}, more than any Mixpeek error, "
            "so it was not read"
        )
    if not text:
        return f"the response has no body ({response.reason_phrase or 'no reason phrase'})"
    if "<html" in text[:500].lower() or "text/html" in response.headers.get("content-type", ""):
        title = _TITLE.search(text)
        shown = " ".join(title.group(1).split()) if title else "untitled"
        return f"an HTML page ({shown!r}) came back instead of the API's JSON, likely from a proxy"
    return f"the body is not the API's JSON error (it starts with {text[:80]!r})"


_XML_FIELD = re.compile(r"<(Code|Message)>(.*?)</\1>", re.DOTALL)


def _storage_error_info(response: Answer) -> dict[str, Any]:
    fields = dict(_XML_FIELD.findall(response.text)) if response.body and not response.cut else {}
    return {
        "status_code": response.status_code,
        "message": fields.get("Message") or _describe_foreign_body(response),
        "error_type": "StorageError",
        "code": fields.get("Code"),
        "request_id": response.headers.get("x-amz-request-id"),
        "retry_after": parse_retry_after(response.headers.get("retry-after")),
    }
