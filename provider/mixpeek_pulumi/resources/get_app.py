"""``get_app``: a Mixpeek App looked up by its id or its slug from the program itself, the
dynamic door's ``getApp``; ``kinds.app.lookup_app`` does the work."""

from __future__ import annotations

import pulumi

from ..config import ProviderConfig
from ..errors import InputError, redact
from ..kinds.app import AppFound, AppLookup, lookup_app
from ..kinds.diffs import validate_inputs
from ..run.context import READ_SECONDS, Context
from ..run.progress import write_line

GetAppResult = AppFound
"""What ``get_app`` returns: ``app_id``, ``slug``, ``url``, ``environments``."""


def get_app(
    *, app_id: str | None = None, slug: str | None = None, base_url: str | None = None
) -> GetAppResult:
    """The app with this id or this slug (one of the two), read now, with the provider's
    settings (``mixpeek:apiKey``, ``mixpeek:baseUrl`` or their environment variables).
    Raises ``MixpeekError`` in a sentence when there is no such app."""
    given = {"app_id": app_id, "slug": slug, "base_url": base_url}
    args, failures = validate_inputs(AppLookup, given)
    if failures or args is None:
        raise InputError("getApp", "get_app", [(f.field, f.reason) for f in failures])
    settings = pulumi.Config("mixpeek")
    config = ProviderConfig.resolve(lambda key: settings.get(key.partition(":")[2]))
    with Context.open(
        "getApp",
        "get_app",
        config=config,
        say=lambda line: write_line(f"get_app: {redact(line)}"),
        subject=args,
        seconds=READ_SECONDS,
    ) as ctx:
        return lookup_app(ctx, args)
