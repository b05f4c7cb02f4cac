"""What every route shares: the emulator's context, the error envelopes of both route families,
and request bodies checked against the contract of their operation.

The real API refuses keys its request models do not define (422 ``extra_forbidden``, since
2026-11-02); so does the emulator. Errors are ``ErrorResponse`` in each family's version, and a
422 on a plugin route is ``HTTPValidationError``, as spec 0.81 documents it.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from jsonschema.exceptions import ValidationError as SchemaError

from . import contract
from .closing import Closing
from .contract import Family, Operation
from .faults import Faults
from .state import DnsHolds, StatusCase, Store, Timing
from .storage import ObjectStore


class ApiFailure(Exception):
    """An error answer: status, ``error.type``, message, code, details; a 422 also carries its
    ``problems`` (``problem()`` each), which each family shapes its own way."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.details = details
        self.problems = problems

    def body(self, family: Family) -> dict[str, Any]:
        if self.problems is not None and family == "plugins":
            return validation_detail(self.problems)
        return error_body(family, self.status, self.type, self.message, self.code, self.details)


def error_body(
    family: Family,
    status: int,
    type_: str,
    message: str,
    code: str | None = None,
    details: Any = None,
) -> dict[str, Any]:
    """``ErrorResponse``: the apps SDK's ``ErrorDetail`` has ``code``; spec 0.81's, which the
    plugin routes follow, does not."""
    error: dict[str, Any] = {"message": message, "type": type_}
    if family == "apps":
        error["code"] = code
    error["details"] = details
    return {"success": False, "status": status, "error": error}


def problem(type_: str, loc: list[str | int], message: str) -> dict[str, Any]:
    """One 422 problem: its type, where (``["body", "meta", "title"]``; an int is a list
    index), and a sentence."""
    return {"type": type_, "loc": loc, "message": message}


def validation_detail(problems: list[dict[str, Any]]) -> dict[str, Any]:
    """``HTTPValidationError``, the plugin routes' documented 422 (spec 0.81, SDK 0.81.1)."""
    return {"detail": [{"loc": p["loc"], "msg": p["message"], "type": p["type"]} for p in problems]}


def not_found(resource: str, id_: str) -> ApiFailure:
    return ApiFailure(
        404,
        "NotFoundError",
        f"{resource.capitalize()} {id_} not found",
        details={"id": id_, "resource": resource},
    )


def invalid(problems: list[dict[str, Any]]) -> ApiFailure:
    """422: in the apps envelope, ``details.validation_errors`` (``{type, location, message}``,
    the location dotted); on plugin routes, ``HTTPValidationError``."""
    listed = [
        {"type": p["type"], "location": ".".join(map(str, p["loc"])), "message": p["message"]}
        for p in problems
    ]
    return ApiFailure(
        422,
        "ValidationError",
        "Request validation failed",
        code="validation_error",
        details={"validation_errors": listed},
        problems=problems,
    )


@dataclass
class Context:
    """The emulator's state and settings, shared by every route."""

    api_key: str
    store: Store
    objects: ObjectStore
    faults: Faults
    timing: Timing
    extensions: frozenset[str]
    scratch: Path | None
    closing: Closing
    plugin_status_case: StatusCase = "lower"
    dns: DnsHolds = field(default_factory=DnsHolds)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


# ----------------------------------------------------------------- request bodies


_ERROR_TYPES = {
    "required": "missing",
    "additionalProperties": "extra_forbidden",
    "pattern": "string_pattern_mismatch",
    "minLength": "string_too_short",
    "maxLength": "string_too_long",
    "minimum": "greater_than_equal",
    "maximum": "less_than_equal",
    "exclusiveMinimum": "greater_than",
    "exclusiveMaximum": "less_than",
    "enum": "enum",
}


def _problem(error: SchemaError) -> list[dict[str, Any]]:
    where: list[str | int] = ["body", *error.absolute_path]
    if error.validator == "additionalProperties":
        schema: Any = error.schema
        declared: dict[str, Any] = schema.get("properties", {})
        given: Any = error.instance
        extra = sorted(set(given) - set(declared))
        return [
            problem("extra_forbidden", [*where, k], "Extra inputs are not permitted") for k in extra
        ]
    if error.validator == "required":
        return [problem("missing", where, error.message)]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return _problem(best)
    kind = _ERROR_TYPES.get(str(error.validator), f"{error.validator}_error")
    if error.validator == "type":
        kind = f"{error.validator_value}_type" if isinstance(error.validator_value, str) else "type"
    return [problem(kind, where, error.message)]


def check_body(op: Operation, body: Any) -> dict[str, Any]:
    """``body`` as the contract of ``op`` accepts it, or a 422 naming each problem."""
    assert op.body is not None
    errors = sorted(op.body.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise invalid([p for e in errors for p in _problem(e)])
    result: dict[str, Any] = body if isinstance(body, dict) else {}
    return result


async def contract_body(request: Request) -> dict[str, Any]:
    """A dependency: the JSON body, checked against the request body the contract documents for
    this route (an empty body is ``{}`` where the body is optional). As FastAPI reads a body, a
    declared media type other than JSON is not read as JSON."""
    op = documented(request)
    raw = await request.body()
    if not op.body_required and raw.strip() == b"":
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise invalid([problem("model_attributes_type", ["body"], f"Expected JSON, got {media}")])
    return check_body(op, parsed(raw))


def documented(request: Request) -> Operation:
    path = request.scope["path"]
    op = contract.operation(request.method, path)
    assert op is not None, f"{request.method} {path} is no documented operation"
    assert op.body is not None, f"{request.method} {path} documents no request body"
    return op


def parsed(raw: bytes) -> Any:
    """The JSON document, or a 422 for what is none or cannot be kept: bad syntax, nesting or
    a number too deep or long to read, and lone surrogates (valid JSON escapes, but no text)."""
    try:
        body = json.loads(raw)
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeErrors are ValueErrors
        raise invalid([problem("json_invalid", ["body"], "JSON decode error")]) from None
    return body


Body = Annotated[dict[str, Any], Depends(contract_body)]


def signed_at(ctx: Context, expires_in: int) -> float | None:
    """When a new presigned URL counts as signed: now (None), or under the ``expire_urls``
    fault long enough ago that it has expired by the time it is used."""
    return ctx.store.clock.time() - expires_in - 5 if ctx.faults.take("expire_urls") else None


def authorize(request: Request) -> None:
    """Every ``/v1`` route wants ``Authorization: Bearer <key>``."""
    expected = f"Bearer {context(request).api_key}"
    given = request.headers.get("authorization")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiFailure(401, "UnauthorizedError", "Missing or invalid API key")
