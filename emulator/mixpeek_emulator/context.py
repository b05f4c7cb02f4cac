"""What every route shares: the emulator's context, the API's error envelope, and request
bodies checked against the official SDKs' request schemas.

The real API refuses keys its request models do not define (422 ``extra_forbidden``, since
2026-11-02) and answers every error as ``ErrorResponse``; so does the emulator.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from .closing import Closing
from .faults import Faults
from .state import Store, Timing
from .storage import ObjectStore


class ApiFailure(Exception):
    """An answer in the API's error envelope: status, ``error.type``, message, code, details."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.details = details

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.type, self.message, self.code, self.details)


def error_body(
    status: int, type_: str, message: str, code: str | None = None, details: Any = None
) -> dict[str, Any]:
    return {
        "success": False,
        "status": status,
        "error": {"message": message, "type": type_, "code": code, "details": details},
    }


def not_found(resource: str, id_: str) -> ApiFailure:
    return ApiFailure(
        404,
        "NotFoundError",
        f"{resource.capitalize()} {id_} not found",
        details={"id": id_, "resource": resource},
    )


def invalid(problems: list[dict[str, Any]]) -> ApiFailure:
    """422 with ``details.validation_errors`` (``{type, location, message}``), as the API."""
    return ApiFailure(
        422,
        "ValidationError",
        "Request validation failed",
        code="validation_error",
        details={"validation_errors": problems},
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


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


# ------------------------------------------------------------------- official request bodies


@cache
def _validators() -> dict[str, Draft202012Validator]:
    text = resources.files(__package__).joinpath("official_requests.json").read_text()
    return {
        name: Draft202012Validator(schema)
        for name, schema in json.loads(text).items()
        if not name.startswith("_")
    }


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
    where = ["body", *(str(p) for p in error.absolute_path)]
    if error.validator == "additionalProperties":
        schema: Any = error.schema
        declared: dict[str, Any] = schema.get("properties", {})
        given: Any = error.instance
        extra = sorted(set(given) - set(declared))
        return [
            {
                "type": "extra_forbidden",
                "location": ".".join([*where, k]),
                "message": "Extra inputs are not permitted",
            }
            for k in extra
        ]
    if error.validator == "required":
        return [{"type": "missing", "location": ".".join(where), "message": error.message}]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return _problem(best)
    kind = _ERROR_TYPES.get(str(error.validator), f"{error.validator}_error")
    if error.validator == "type":
        kind = f"{error.validator_value}_type" if isinstance(error.validator_value, str) else "type"
    return [{"type": kind, "location": ".".join(where), "message": error.message}]


def check_body(schema: str, body: Any) -> dict[str, Any]:
    """``body`` as the official ``schema`` accepts it, or a 422 naming each problem."""
    errors = sorted(_validators()[schema].iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        problems = [p for e in errors for p in _problem(e)]
        raise invalid(problems)
    result: dict[str, Any] = body if isinstance(body, dict) else {}
    return result


def official_body(
    schema: str, *, optional: bool = False
) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency: the JSON body, checked against the official ``schema`` (an empty or null
    body is ``{}`` where the endpoint documents the body as optional)."""

    async def read(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if optional and raw.strip() in (b"", b"null"):
            return {}
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise invalid(
                [{"type": "json_invalid", "location": "body", "message": "JSON decode error"}]
            ) from None
        return check_body(schema, body)

    return read


def authorize(request: Request) -> None:
    """Every ``/v1`` route wants ``Authorization: Bearer <key>``."""
    expected = f"Bearer {context(request).api_key}"
    given = request.headers.get("authorization")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiFailure(401, "UnauthorizedError", "Missing or invalid API key")
