"""The local copy of the service's plugin checks."""

from __future__ import annotations

from pathlib import Path

from mixpeek_pulumi import bundle
from mixpeek_pulumi.plugin_scan import check_plugin, scan
from tests.sites import plugin, write_tree


def test_blocked_imports_and_calls_with_positions() -> None:
    source = "import os\nfrom socket import create_connection\nos.execv('x', [])\n__import__('ctypes')\nos.getcwd()\n"
    assert [str(f) for f in scan("realtime.py", source)] == [
        "realtime.py:2:0: blocked import 'socket'",
        "realtime.py:3:0: blocked call 'os.execv()'",
        "realtime.py:4:0: blocked call '__import__()'",
    ]


def test_required_files_and_nested_layout(tmp_path: Path) -> None:
    nested = write_tree(tmp_path / "n", {f"text_embed/{k}": v for k, v in plugin().items()})
    assert check_plugin(bundle.collect(nested, bundle.Excludes())) == []
    partial = write_tree(tmp_path / "p", {"manifest.py": "x = 1\n"})
    assert check_plugin(bundle.collect(partial, bundle.Excludes())) == [
        "pipeline.py is required but missing"
    ]


def test_syntax_errors_are_reported_with_a_line() -> None:
    assert [str(f) for f in scan("pipeline.py", "def broken(:\n")] == [
        "pipeline.py:1:12: syntax error: invalid syntax"
    ]
