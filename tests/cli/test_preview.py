"""What a preview says, through the real CLI, in both front doors: a content change is named by
the bundle's content digest (``[diff: ~bundleSha256]``; ``preview --diff`` shows the two
digests, never the unchanged path as a change), the files that differ are listed under the
resource, and an unchanged bundle shows no change."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from scripts.pulumi_cli import Cli
from tests.cli.conftest import open_native_stack, open_stack, site_project
from tests.cli.test_native_provider import SITE, diagnostics_of, yaml_program
from tests.emulator_fixture import EmulatorHandle
from tests.sites import site, write_tree

pytestmark = pytest.mark.cli

CHANGED = "bundle: 1 changed, 1 added, 1 removed: app.js, +assets/new.css, -assets/style.css"


def digest_change(lines: list[str], key: str) -> list[str]:
    """The property lines ``preview --diff`` shows for the bundle: its digest, old => new."""
    shown = [line.strip() for line in lines if line.strip().startswith("~ bundle")]
    assert len(shown) == 1, lines
    assert re.fullmatch(rf'~ {key}: "[0-9a-f]{{64}}" => "[0-9a-f]{{64}}"', shown[0]), shown
    return shown


def edit(folder: Path) -> None:
    """One file changed, one added, one removed; index.html stays as it was."""
    (folder / "app.js").write_text("console.log('hello again');")
    (folder / "assets" / "new.css").write_text("p { margin: 0; }")
    (folder / "assets" / "style.css").unlink()


def test_native_preview_names_bundle_and_lists_its_files(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    write_tree(project / "site", site())
    (project / "Pulumi.yaml").write_text(yaml_program("previewed", SITE))
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", emulator.create_app("previewed-site"))
    assert stack.up().ok
    index = project / "site" / "index.html"
    index.write_text(index.read_text())  # rebuilt, the same bytes: no change
    assert stack.preview(expect_no_changes=True).ok

    edit(project / "site")
    plain = stack.preview()
    detailed = stack.preview(diff=True)

    assert plain.ok, plain.output
    assert "[diff: ~bundleSha256]" in plain.output, plain.output
    assert CHANGED in plain.output, plain.output
    assert "index.html" not in plain.output
    digest_change(detailed.lines, "bundleSha256")
    assert CHANGED in detailed.output, detailed.output


def test_dynamic_preview_names_bundle_and_lists_its_files(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    project = site_project(tmp_path / "project")
    write_tree(project / "site", site())
    stack = open_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", emulator.create_app("previewed-dynamic"))
    stack.set_config("bundle", str(project / "site"))
    assert stack.up().ok
    assert stack.preview(expect_no_changes=True).ok

    edit(project / "site")
    plain = stack.preview()
    detailed = stack.preview(diff=True)

    assert plain.ok, plain.output
    assert "[diff: ~bundle_sha256]" in plain.output, plain.output
    assert CHANGED in plain.output, plain.output
    digest_change(detailed.lines, "bundle_sha256")


def test_large_deploy_reports_progress_and_a_heartbeat(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """About 100 MB that does not compress: packing and uploading say where they are at the
    start, on the (shortened) interval and at the end; a queue with a quiet log gets a
    heartbeat with the elapsed time. Each line under the resource is whole."""
    project = tmp_path / "project"
    write_tree(project / "site", site())
    blobs = project / "site" / "media"
    blobs.mkdir()
    for i in range(4):
        (blobs / f"clip{i}.bin").write_bytes(os.urandom(25 * 1_000_000))
    (project / "Pulumi.yaml").write_text(yaml_program("large", SITE))
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.env |= {"MIXPEEK_PROGRESS_SECONDS": "0.05", "MIXPEEK_HEARTBEAT_SECONDS": "0.5"}
    stack.set_config("appId", emulator.create_app("large-site"))
    emulator.timing(queue_seconds=2.0)

    up = stack.up()

    assert up.ok, up.output
    logs = diagnostics_of(up.lines, "mixpeek:index:AppDeploy (site)")
    # One unit system in every line (sizes.size_text): 100,000,000 bytes and a page are 95.4 MiB.
    size, rate = r"[\d.]+ (bytes|KiB|MiB)", r"[\d.]+ (bytes|KiB|MiB|GiB)/s"
    assert "packing: 7 files, 95.4 MiB" in logs, logs
    assert any(re.match(rf"packing: {size} of 95.4 MiB \(\d+%\), {rate}$", x) for x in logs)
    assert any(re.match(rf"packing: done, 7 files, 95.4 MiB in .* \({rate}\)$", x) for x in logs)
    uploading = [x for x in logs if x.startswith("uploading: ")]
    assert uploading[0].startswith("uploading: 7 files, 95.4 MiB"), uploading
    assert len(uploading) >= 3 and uploading[-1].startswith("uploading: done, 7 files"), logs
    assert any(re.match(r"waiting for deploy \S+ to end, [\d.]+s elapsed$", x) for x in logs)


def test_plugin_on_path_is_announced_four_times_per_command(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """What the README says of a plugin found on PATH rather than installed: the engine's own
    warning, once per plugin load, four times per command with this CLI."""
    project = tmp_path / "project"
    write_tree(project / "site", site())
    (project / "Pulumi.yaml").write_text(yaml_program("onpath", SITE))
    stack = open_stack(cli, emulator, project, tmp_path)
    stack.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{stack.env['PATH']}"
    stack.set_config("appId", emulator.create_app("on-path"))

    preview = stack.preview()

    assert preview.ok, preview.output
    notice = "warning: using pulumi-resource-mixpeek from $PATH at "
    assert (
        diagnostics_of(preview.lines, "pulumi:pulumi:Stack (onpath-dev)").count(
            notice + str(Path(sys.executable).parent / "pulumi-resource-mixpeek")
        )
        == 4
    )
