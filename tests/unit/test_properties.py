"""Property-based bad input: every case ends in a clear error or a correct archive, never a
bare traceback, and nothing is written outside the temporary area."""

from __future__ import annotations

import os
import tempfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixpeek_pulumi import bundle
from mixpeek_pulumi.errors import BundleError
from mixpeek_pulumi.resources.app_deploy import AppDeployProvider
from mixpeek_pulumi.resources.app_promotion import AppPromotionProvider
from mixpeek_pulumi.resources.plugin_deployment import PluginDeploymentProvider
from mixpeek_pulumi.spec import AppDeployInputs, AppPromotionInputs, PluginDeploymentInputs

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
names = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", ".."))
trees = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map("/".join), st.binary(max_size=300), max_size=8
)
extras = st.sets(
    st.sampled_from(
        ["index", "nested-index", "link-out", "link-in", "fifo", "empty-dir", "bad-name", "secret"]
    )
)


def build(root: Path, files: dict[str, bytes], extra: set[str]) -> None:
    root.mkdir()
    for rel, data in files.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError, OSError):
            continue  # a name that is both a file and a folder in the generated tree
    if "index" in extra:
        (root / "index.html").write_text("<h1>x</h1>")
    if "nested-index" in extra:
        (root / "dist").mkdir(exist_ok=True)
        (root / "dist" / "index.html").write_text("x")
    if "link-out" in extra:
        (root / "out-link").symlink_to("/etc/hostname")
    if "link-in" in extra and (root / "index.html").exists():
        (root / "in-link.html").symlink_to(root / "index.html")
    if "fifo" in extra:
        os.mkfifo(root / "pipe")
    if "empty-dir" in extra:
        (root / "empty").mkdir(exist_ok=True)
    if "bad-name" in extra:
        with open(os.path.join(os.fsencode(root), b"caf\xe9.html"), "wb") as handle:
            handle.write(b"x")
    if "secret" in extra:
        (root / ".env").write_text("KEY=1")


@SETTINGS
@given(files=trees, extra=extras)
def test_any_folder_gives_a_clear_answer(files: dict[str, bytes], extra: set[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        build(root, files, extra)
        ours_before = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("mixpeek-")}
        result = AppDeployProvider().check(
            {}, {"app_id": "app_1", "bundle": str(root), "resource_name": "s"}
        )
        for failure in result.failures:
            assert failure.property == "bundle"
            assert failure.reason.startswith("The bundle at ")
            assert failure.reason.endswith(".")
        if "link-out" in extra or "fifo" in extra or "bad-name" in extra:
            assert result.failures
        if not result.failures:
            collected = bundle.collect(root, bundle.Excludes())
            archive = bundle.write_archive(collected, directory=tmp)
            with zipfile.ZipFile(archive.path) as zf:
                assert zf.namelist() == [f.rel for f in collected]
                assert ".env" not in zf.namelist()
            assert archive.digest.sha256 == result.inputs["bundle_sha256"]
        ours_after = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("mixpeek-")}
        assert ours_after <= ours_before  # nothing of ours written outside the given folder


entry_names = st.one_of(
    names, st.sampled_from(["../evil", "/abs.html", "a/../../b", "index.html", "dup.txt"])
)


@SETTINGS
@given(
    entries=st.lists(st.tuples(entry_names, st.binary(max_size=50)), max_size=6), bomb=st.booleans()
)
def test_any_zip_gives_a_clear_answer(entries: list[tuple[str, bytes]], bomb: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "in.zip"
        with warnings.catch_warnings(), zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
            for name, data in entries:
                zf.writestr(name, data)
            if bomb:
                zf.writestr("bomb.bin", b"\0" * (4 * 1024 * 1024))
        try:
            files = bundle.collect(packed, bundle.Excludes())
        except BundleError as exc:
            message = str(exc)
        else:
            message = ""
        if message:
            assert message.startswith(f"The bundle at {packed} cannot be used: ")
            return
        for f in files:
            assert not f.rel.startswith("/")
            assert ".." not in f.rel.split("/")
        assert len({f.rel for f in files}) == len(files)
        assert not bomb


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
PROVIDERS: list[tuple[Any, Any, dict[str, Any]]] = [
    (AppDeployProvider, AppDeployInputs, {"app_id": "app_1", "bundle": "/nonexistent"}),
    (AppPromotionProvider, AppPromotionInputs, {"app_id": "app_1", "version": 1}),
    (
        PluginDeploymentProvider,
        PluginDeploymentInputs,
        {"namespace_id": "ns", "name": "abc", "version": "1.0.0", "source": "/nonexistent"},
    ),
]


@SETTINGS
@given(which=st.integers(0, 2), field=st.data(), value=garbage)
def test_any_field_value_is_checked_not_crashed(
    which: int, field: st.DataObject, value: Any
) -> None:
    provider_cls, model, base = PROVIDERS[which]
    name = field.draw(st.sampled_from(sorted(model.model_fields)))
    props = {**base, name: value, "resource_name": "r"}
    result = provider_cls().check({}, props)
    for failure in result.failures:
        assert failure.property
        assert failure.reason


def test_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "index.html").write_text("x")
    with (root / "video.bin").open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: no disk, all the bytes
    tracemalloc.start()
    try:
        files = bundle.collect(root, bundle.Excludes())
        digest = bundle.digest(files)
        archive = bundle.write_archive(files, directory=str(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert archive.digest == digest
    assert peak < 16 * 1024 * 1024
