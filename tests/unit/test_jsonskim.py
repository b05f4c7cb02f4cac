"""Answers that grow with an app's history are read in bounded memory: what is skipped never
changes what is kept, at any chunk size, and a 25 MB history costs a few MB."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.skim import ANY, Rule, SkimError, skim
from tests.scripted_server import Reply, scripted_server

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
RULES = (Rule(("versions", ANY, "asset_manifest")), Rule(("versions", ANY, "source_files")))


def pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def expected(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the rules leave it: each version's file list and sources read as null."""
    kept: dict[str, Any] = json.loads(json.dumps(doc))
    for version in kept.get("versions", []):
        if isinstance(version, dict):
            for key in ("asset_manifest", "source_files"):
                if key in version:
                    version[key] = None
    return kept


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    versions=st.lists(
        st.dictionaries(
            st.sampled_from(["version", "asset_manifest", "source_files", "message"]), json_values
        ),
        max_size=4,
    ),
    rest=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != "versions"), json_values, max_size=4
    ),
    size=st.integers(min_value=1, max_value=64),
    indent=st.sampled_from([None, 1]),
)
def test_skipping_never_changes_what_is_kept(
    versions: list[dict[str, Any]], rest: dict[str, Any], size: int, indent: int | None
) -> None:
    doc = {**rest, "versions": versions}
    body = json.dumps(doc, indent=indent, ensure_ascii=False).encode()
    assert skim(pieces(body, size), RULES, cap=1 << 20).data == expected(doc)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"a": ',
        b'{"a": 1} x',
        b'{"a" 1}',
        b'{"versions": [{"asset_manifest": {"x": "y"',
        b"\xff",
    ],
)
def test_what_is_not_json_is_refused_in_a_sentence(body: bytes) -> None:
    with pytest.raises(SkimError):
        skim(pieces(body, 3), RULES, cap=1 << 20)


def test_a_thinned_file_list_keeps_its_first_files_and_the_wanted_ones() -> None:
    manifest = {f"f{i:05}.js": {"hash": f"{i:064x}", "size": i} for i in range(5000)}
    body = json.dumps({"version": 3, "asset_manifest": manifest}).encode()
    rule = Rule(("asset_manifest",), keep=3, wanted=frozenset({"f04999.js"}))
    found = skim(pieces(body, 4096), [rule], cap=1 << 20)
    assert list(found.data["asset_manifest"]) == [
        "f00000.js",
        "f00001.js",
        "f00002.js",
        "f04999.js",
    ]
    assert found.thinned == {("asset_manifest",): 5000}


def history(versions: int, files: int) -> bytes:
    manifest = {
        f"assets/part{i % 40}/file{i}.js": {
            "s3_key": f"apps/a/v1/assets/file{i}.js",
            "hash": f"{i:064x}",
            "size": i,
        }
        for i in range(files)
    }
    record = {
        "version": 1,
        "asset_prefix": "apps/a/v1/",
        "message": "m",
        "asset_manifest": manifest,
    }
    app = {
        "app_id": "app_1",
        "slug": "s",
        "environments": {"production": {"deploy_id": "dep_1", "asset_prefix": "apps/a/v1/"}},
        "versions": [{**record, "version": n} for n in range(versions, 0, -1)],
    }
    return json.dumps(app).encode()


def test_an_app_with_a_long_history_is_read_in_memory_that_does_not_grow_with_it() -> None:
    body = history(40, 4000)
    assert len(body) > 16 * 1024 * 1024  # past the cap a whole answer may have
    with scripted_server() as server:
        server.default[("GET", "/v1/apps/app_1")] = Reply(chunks=lambda: pieces(body, 65536))
        with MixpeekClient(api_key="sk_test_history_123456", base_url=server.url) as api:
            tracemalloc.start()
            app = api.get_app("app_1")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert [v["version"] for v in app.versions or []] == list(range(40, 0, -1))
    assert all(v["asset_manifest"] is None for v in app.versions or [])
    assert peak < len(body) // 8, f"peak {peak} bytes for an answer of {len(body)}"
