"""The native provider's plugin process (``pulumi-resource-mixpeek``), started and configured
as the engine does it: the port read from its first line, the API key sent as a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from mixpeek_pulumi.native import wire

PLUGIN = Path(sys.executable).parent / "pulumi-resource-mixpeek"


@contextmanager
def native_provider(
    base_url: str, api_key: str, state_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """A configured stub of a fresh plugin process; ``state_dir`` holds its journal."""
    env = {**os.environ, **(env or {}), "MIXPEEK_PULUMI_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        [str(PLUGIN)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=state_dir.parent,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            secret = {wire.SIG: wire.SECRET_SIG, "value": api_key}
            stub.Configure(
                provider_pb2.ConfigureRequest(
                    args=wire.dump({"apiKey": secret, "baseUrl": base_url})
                )
            )
            yield stub
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
