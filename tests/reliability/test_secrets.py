"""The API key appears nowhere a user or an attacker could look, whatever happens."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pulumi
import pytest

from mixpeek_emulator.state import Timing
from mixpeek_pulumi import AppDeploy, AppPromotion, PluginDeployment
from tests.emulator_fixture import start_emulator
from tests.engine import EngineError, FakeEngine, ProviderHost, run_program, strip_secrets
from tests.sites import plugin, site, write_tree


def test_the_key_never_leaks(tmp_path: Path) -> None:
    key = f"sk_live_SECRETSCAN{secrets.token_hex(12)}"
    host_tmp = tmp_path / "host-tmp"  # the provider's own temp area, to see what it leaves
    host_tmp.mkdir()
    emu = start_emulator(api_key=key, data_dir=tmp_path / "emulator", timing=Timing(0.05, 0.3, 0.3))
    host = ProviderHost(
        env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path / "inflight"), "TMPDIR": str(host_tmp)}
    )
    seen: list[str] = []
    try:
        engine = FakeEngine(
            host,
            config={"mixpeek:apiKey": key, "mixpeek:baseUrl": emu.url},
            secret_keys={"mixpeek:apiKey"},
        )
        app_id = emu.create_app("secret-site")
        # The bundle folder holds the key in files that must never ship.
        bundle = write_tree(
            tmp_path / "dist",
            {
                **site(),
                ".env": f"MIXPEEK_API_KEY={key}\n",
                "config/.env.local": key,
                "deploy.key": key,
            },
        )
        source = write_tree(tmp_path / "plugin", {**plugin(), ".env": key})

        def program() -> None:
            staging = AppDeploy(
                "site",
                app_id=app_id,
                bundle=str(bundle),
                environment="staging",
                include_source_files=True,
                poll_interval_seconds=0.2,
            )
            prod = AppPromotion("prod", app_id=app_id, version=staging.version)
            p = PluginDeployment(
                "embed",
                namespace_id="ns_secret",
                name="secret_embed",
                version="1.0.0",
                source=str(source),
                poll_interval_seconds=0.1,
            )
            pulumi.export("url", prod.url)
            pulumi.export("route", p.route_prefix)

        # A server that echoes credentials back in its error message.
        echo = {
            "success": False,
            "status": 400,
            "error": {
                "type": "BadRequestError",
                "message": f"bad header Authorization: Bearer {key} (key={key})",
            },
        }
        emu.fault(method="POST", path="/v1/apps/*/deploy/upload-url", status=400, body=echo)
        with pytest.raises(EngineError) as info:
            run_program(engine, program)
        seen += [str(info.value), info.value.details]
        injected = f"build env leaked {key}"
        emu.next(deploy_fail_reason=injected)
        with pytest.raises(EngineError) as info2:
            run_program(engine, program)
        seen += [str(info2.value), info2.value.details]

        result = run_program(engine, program)
        seen.append(json.dumps(result.outputs))
        for res in engine.state.values():
            seen.append(json.dumps(res.inputs) + json.dumps(res.outputs))
            pickled = strip_secrets(res.outputs["__provider"])
            seen.append(base64.b64decode(pickled).decode("latin-1"))
        with emu.api() as c:
            version = c.get(f"/v1/apps/{app_id}/versions/1").json()
        assert ".env" not in version["source_files"]
        seen.append(json.dumps(version))
        run_program(engine, lambda: None)  # destroy everything
        seen.append(json.dumps(emu.requests()))
    finally:
        host.close()
        emu.running.stop()
    seen.append(host.output())
    assert "AppDeploy site:" in host.output()  # the provider did print; just never the key
    for path in (tmp_path / "emulator").rglob("*"):
        if path.is_file():
            # The failure reason this test told the emulator to report is the emulator's own data.
            seen.append(path.read_bytes().decode("latin-1").replace(injected, ""))
    for path in (tmp_path / "inflight").rglob("*") if (tmp_path / "inflight").exists() else []:
        seen.append(path.read_text())
    left = [p.name for p in host_tmp.rglob("*")]
    assert not left, f"the provider left temporary files behind: {left}"
    leaks = [i for i, text in enumerate(seen) if key in text]
    assert not leaks, f"the key leaked into {len(leaks)} of {len(seen)} places"
    assert "[REDACTED]" in seen[0]
