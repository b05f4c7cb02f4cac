"""The provider's functions (invokes): what a program reads from the service without
declaring a resource. Both front doors and the schema read them from here, as they read the
kinds from ``registry``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from ..run.context import Context
from .app import AppFound, AppLookup, lookup_app
from .spec import Inputs


@dataclass(frozen=True)
class Function:
    name: str
    """The function's name in the schema (``mixpeek:index:<name>``)."""
    summary: str
    args: type[Inputs]
    result: type[BaseModel]
    run: Callable[[Context, Any], BaseModel]


_ALL: Final = (
    Function(
        "getApp",
        "Looks up a Mixpeek App by its id or its slug: its id, slug, URL and what each "
        "environment serves. Nothing is created.",
        AppLookup,
        AppFound,
        lookup_app,
    ),
)
FUNCTIONS: Final[Mapping[str, Function]] = {f.name: f for f in _ALL}
