"""Write the two API contracts the emulator is held to, each with where it came from.

- ``apps.json``: the ``/v1/apps`` operations as Mixpeek's official SDK ``mixpeek`` 1.3.783
  defines them (Mixpeek publishes no OpenAPI document with them), rebuilt by
  ``scripts/sdk_openapi.py`` from the SDK's own ``api/`` and ``models/`` code.
- ``plugins.json``: every plugin operation of Mixpeek's published OpenAPI document (the
  ``mixpeek/docs`` repository, ``api-reference/openapi.json``, version 0.81), copied verbatim with
  the component schemas they reach.

Both live in ``emulator/mixpeek_emulator/contracts/``: the emulator checks request bodies against
them and answers their documented routes, and ``tests/contract`` runs schemathesis from them.

    python -m scripts.contracts apps                        # rewrite apps.json from the SDK
    python -m scripts.contracts plugins --from openapi.json --commit <sha>
    python -m scripts.contracts --check                     # apps.json is what the SDK gives now
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "emulator" / "mixpeek_emulator" / "contracts"
APPS = FOLDER / "apps.json"
PLUGINS = FOLDER / "plugins.json"
APPS_SDK = "1.3.783"
PLUGINS_SDK = "0.81.1"  # the last release with the namespaced custom-plugins API
DOCS_REPOSITORY = "https://github.com/mixpeek/docs"
DOCS_PATH = "api-reference/openapi.json"
PLUGIN_PATHS = "/plugins"  # every path with this segment is a plugin operation


def sdk_dir(version: str) -> Path:
    """Where ``make setup`` installs an official SDK: beside the virtualenv's packages."""
    return Path(sys.prefix) / "sdks" / f"mixpeek-{version}"


def write(target: Path, document: dict[str, Any]) -> None:
    target.write_text(render(document))


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------- apps


def apps_contract() -> dict[str, Any]:
    folder = sdk_dir(APPS_SDK)
    if not folder.is_dir():
        raise SystemExit(
            f"The official SDK mixpeek {APPS_SDK} is not in {folder}: run `make setup`."
        )
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "sdk_openapi.py"),
            "mixpeek.api.apps_api",
            "AppsApi",
        ],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"scripts/sdk_openapi.py failed:\n{done.stderr[-3000:]}")
    document: dict[str, Any] = json.loads(done.stdout)
    document["info"]["x-source"] = {
        "what": "rebuilt from Mixpeek's official Python SDK: the AppsApi class and its models",
        "package": f"mixpeek=={APPS_SDK} (PyPI)",
        "how": "python -m scripts.contracts apps (scripts/sdk_openapi.py)",
    }
    return document


# ---------------------------------------------------------------------------------- plugins


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def plugins_contract(source: Path, commit: str) -> dict[str, Any]:
    """The published document's plugin paths and every component schema they reach."""
    raw = source.read_bytes()
    published = json.loads(raw)
    schemas = published["components"]["schemas"]
    paths = {p: ops for p, ops in published["paths"].items() if PLUGIN_PATHS in p}
    kept: dict[str, Any] = {}
    pending = _refs(paths)
    while pending:
        ref = pending.pop()
        name = ref.rsplit("/", 1)[1]
        if name not in kept:
            kept[name] = schemas[name]
            pending |= _refs(schemas[name])
    return {
        "openapi": published["openapi"],
        "info": {
            **published["info"],
            "x-source": {
                "what": "the plugin operations of Mixpeek's published OpenAPI document, verbatim, "
                "with the component schemas they reach",
                "repository": DOCS_REPOSITORY,
                "commit": commit,
                "path": DOCS_PATH,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "how": f"python -m scripts.contracts plugins --from {DOCS_PATH} --commit {commit}",
            },
        },
        "servers": published.get("servers", []),
        "paths": paths,
        "components": {"schemas": dict(sorted(kept.items()))},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", choices=("apps", "plugins"))
    parser.add_argument("--from", dest="source", type=Path, help="the published openapi.json")
    parser.add_argument("--commit", help="the mixpeek/docs commit the document was read at")
    parser.add_argument("--check", action="store_true", help="fail if apps.json is stale")
    args = parser.parse_args(argv)
    if args.check:
        if not APPS.exists() or APPS.read_text() != render(apps_contract()):
            print(
                f"{APPS.relative_to(ROOT)} differs from mixpeek {APPS_SDK}: run `python -m scripts.contracts apps`."
            )
            return 1
        return 0
    if args.which == "apps":
        write(APPS, apps_contract())
    elif args.which == "plugins":
        if args.source is None or not args.commit:
            parser.error("plugins needs --from <openapi.json> and --commit <sha>")
        write(PLUGINS, plugins_contract(args.source, args.commit))
    else:
        parser.error("say which contract to write, or --check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
