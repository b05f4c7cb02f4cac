"""Widening the SDK's provider host: done only inside it, and when the host is not shaped as
expected, nothing changes and one line says so."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import pytest

from mixpeek_pulumi.resources.host import widen_provider_host


def host_module(servicer: object | None) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__spec__ = importlib.machinery.ModuleSpec("pulumi.dynamic.__main__", None)
    if servicer is not None:
        module.DynamicResourceProviderServicer = servicer  # type: ignore[attr-defined]
    return module


def test_nothing_happens_outside_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert widen_provider_host() is False
    assert capsys.readouterr().err == ""


def test_a_changed_host_is_left_alone_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Renamed:
        def Make(self) -> None: ...

    monkeypatch.setitem(sys.modules, "__main__", host_module(Renamed))
    assert widen_provider_host() is False
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so Ctrl-C "
        "does not reach its deploys: each runs on until its timeout_seconds",
        "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so it keeps "
        "serving 4 deploys at a time",
    ]
    assert not hasattr(Renamed.Make, "experimental_thread_pool")


def test_cancel_is_passed_on_whatever_the_thread_pool_hook_finds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The host's own Cancel does nothing; its code is replaced in place (gRPC holds the
    method it registered), with or without gRPC's private pool hook."""
    from mixpeek_pulumi.deadline import Cancellation
    from mixpeek_pulumi.resources import host

    module = host_module(None)
    # The host's servicer, defined in the host's module as the SDK defines it there.
    exec(
        "from google.protobuf import empty_pb2\n"
        "class DynamicResourceProviderServicer:\n"
        "    def Cancel(self, request, context):\n"
        "        return empty_pb2.Empty()\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, "__main__", module)
    monkeypatch.setattr(host, "HOST_CANCEL", Cancellation())
    registered = module.DynamicResourceProviderServicer().Cancel  # what gRPC holds
    widen_provider_host()
    assert "Ctrl-C" not in capsys.readouterr().err
    assert not host.HOST_CANCEL.is_set()
    registered(None, None)
    assert host.HOST_CANCEL.is_set()


def test_the_expected_host_gets_a_wider_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    class Servicer:
        def Create(self) -> None: ...
        def Update(self) -> None: ...
        def Read(self) -> None: ...
        def Delete(self) -> None: ...

    monkeypatch.setitem(sys.modules, "__main__", host_module(Servicer))
    assert widen_provider_host() is True
    pool = Servicer.Create.experimental_thread_pool  # type: ignore[attr-defined]
    assert pool._max_workers == 64
    assert Servicer().Delete.experimental_thread_pool is pool  # type: ignore[attr-defined]
    pool.shutdown()
