"""How an SDK driver reports each call: one JSON line with its name and the model that parsed
the answer, or the error; SDK-free, so both drivers share it."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

FAILED: list[str] = []


def call(name: str, fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except Exception as exc:
        FAILED.append(name)
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        print(json.dumps({"call": name, "ok": False, "error": detail[:2000]}), flush=True)
        return None
    print(json.dumps({"call": name, "ok": True, "model": type(result).__name__}), flush=True)
    return result


def expect(condition: bool, problem: str) -> bool:
    """For checks that are not SDK calls: true, or an error the report shows."""
    if not condition:
        raise RuntimeError(problem)
    return True
