"""A test-only dynamic resource that writes a file: proves the engine stand-in end to end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)


class FileProvider(ResourceProvider):
    token: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def configure(self, req: ConfigureRequest) -> None:
        self.token = req.config.get("toy:token")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if not str(news.get("path", "")).strip():
            failures.append(CheckFailure("path", "path must not be empty"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["path"] if olds.get("path") != news.get("path") else []
        changed = replaces or olds.get("content") != news.get("content")
        return DiffResult(changes=bool(changed), replaces=replaces)

    def _write(self, props: dict[str, Any]) -> dict[str, Any]:
        if props["content"] == "boom":
            raise RuntimeError(f"File {props['path']} was refused: the content 'boom' is invalid.")
        Path(props["path"]).write_text(props["content"])
        return {**props, "size": len(props["content"]), "configured": self.token is not None}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(props["path"], self._write(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._write(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        path = Path(id_)
        if not path.exists():
            return ReadResult(None, {})
        content = path.read_text()
        return ReadResult(id_, {**props, "content": content, "size": len(content)})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if os.path.exists(id_):
            os.remove(id_)


class File(Resource, module="toy", name="File"):
    size: pulumi.Output[int]

    def __init__(self, name: str, path: str, content: pulumi.Input[str]) -> None:
        super().__init__(
            FileProvider(),
            name,
            {"path": path, "content": content, "size": None, "configured": None},
        )
