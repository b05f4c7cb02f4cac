"""The engine stand-in drives a test-only resource through every step `pulumi up` takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from tests.engine import EngineError, FakeEngine, ProviderHost, run_program
from tests.protocol.toy import File


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    host = ProviderHost()
    try:
        yield FakeEngine(host, config={"toy:token": "tok-SECRET"}, secret_keys={"toy:token"})
    finally:
        host.close()


def test_lifecycle_through_the_real_provider_host(engine: FakeEngine, tmp_path: Path) -> None:
    target = tmp_path / "a.txt"

    def program(content: str, path: Path = target) -> None:
        f = File("f", str(path), content)
        pulumi.export("size", f.size)

    first = run_program(engine, lambda: program("hello"))
    assert first.steps == [("create", "f")]
    assert target.read_text() == "hello"
    assert first.outputs["size"] == 5
    assert engine.outputs("f")["configured"] is True  # configure() saw the secret config

    assert run_program(engine, lambda: program("hello")).steps == [("same", "f")]

    updated = run_program(engine, lambda: program("hello world"))
    assert updated.steps == [("update", "f")]
    assert updated.outputs["size"] == 11

    other = tmp_path / "b.txt"
    replaced = run_program(engine, lambda: program("hello world", other))
    assert replaced.steps == [("replace", "f"), ("delete", "f")]
    assert other.exists() and not target.exists()

    other.write_text("changed by hand")
    engine.refresh()
    assert engine.outputs("f")["content"] == "changed by hand"
    assert run_program(engine, lambda: program("hello world", other)).steps == [("update", "f")]
    assert other.read_text() == "hello world"

    other.unlink()
    engine.refresh()
    assert engine.state == {}

    run_program(engine, lambda: program("again", other))
    run_program(engine, lambda: None)
    assert not other.exists()
    assert engine.state == {}


def test_failing_create_records_nothing_and_shows_the_headline(
    engine: FakeEngine, tmp_path: Path
) -> None:
    with pytest.raises(EngineError) as info:
        run_program(engine, lambda: File("f", str(tmp_path / "x"), "boom") and None)
    assert info.value.op == "create"
    assert info.value.headline.startswith("File ") and "'boom' is invalid" in info.value.headline
    assert engine.state == {}


def test_check_failures_are_reported_per_property(engine: FakeEngine) -> None:
    with pytest.raises(EngineError) as info:
        run_program(engine, lambda: File("f", " ", "x") and None)
    assert info.value.op == "check"
    assert "path: path must not be empty" in info.value.details


def test_secret_config_never_reaches_state(engine: FakeEngine, tmp_path: Path) -> None:
    run_program(engine, lambda: File("f", str(tmp_path / "s"), "x") and None)
    state = engine.find("f")
    assert "tok-SECRET" not in repr(state.inputs) + repr(state.outputs)
    assert "__provider" in state.outputs
