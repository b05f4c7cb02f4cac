"""The local copy of the service's plugin checks."""

from __future__ import annotations

from pathlib import Path

from mixpeek_pulumi.files import bundle
from mixpeek_pulumi.files import manifest as manifests
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.files.plugin_scan import check_plugin, has_realtime, scan
from mixpeek_pulumi.kinds import plugin_deployment as plugins
from mixpeek_pulumi.kinds.spec import PluginDeploymentInputs
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
    assert check_plugin(bundle.collect(nested, Excludes())) == []
    partial = write_tree(tmp_path / "p", {"manifest.py": "x = 1\n"})
    assert check_plugin(bundle.collect(partial, Excludes())) == [
        "pipeline.py is required but missing"
    ]


def test_syntax_errors_are_reported_with_a_line() -> None:
    assert [str(f) for f in scan("pipeline.py", "def broken(:\n")] == [
        "pipeline.py:1:12: syntax error: invalid syntax"
    ]


def test_realtime_needs_realtime_py_beside_the_manifest(tmp_path: Path) -> None:
    """At the root or in one top-level folder, as ``manifest.py`` may be; anywhere else it is
    not the plugin's."""
    without = {k: v for k, v in plugin().items() if k != "realtime.py"}
    layouts = {
        "root": (plugin(), True),
        "folder": ({f"text_embed/{k}": v for k, v in plugin().items()}, True),
        "elsewhere": ({**without, "extra/realtime.py": plugin()["realtime.py"]}, False),
        "none": (without, False),
    }
    for name, (files, expected) in layouts.items():
        found = has_realtime(bundle.collect(write_tree(tmp_path / name, files), Excludes()))
        assert found is expected, name


def test_code_a_stack_has_deployed_realtime_is_not_refused_again(tmp_path: Path) -> None:
    """A stack an earlier emulator deployed realtime without realtime.py goes on as it is; a
    new one, or new code, is refused."""
    source = write_tree(tmp_path / "src", {k: v for k, v in plugin().items() if k != "realtime.py"})
    inputs = PluginDeploymentInputs(
        namespace_id="ns", name="text_embed", version="1.0.0", source=str(source)
    )
    digest = manifests.of_files(plugins.collect(str(source)))[0]
    kept = {"namespace_id": "ns", "name": "text_embed", "version": "1.0.0"}
    _, fresh = plugins.check(inputs, set(), {})
    _, deployed = plugins.check(
        inputs, set(), {**kept, "code_sha256": digest, "deployment_type": "realtime"}
    )
    assert [f.field for f in fresh] == ["deployment_type"]
    assert deployed == []
