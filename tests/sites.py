"""Small real build folders and plugin sources for tests, written to disk."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def write_tree(root: Path, files: Mapping[str, str | bytes], *, mtime: float | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return root


def site(version: str = "v1") -> dict[str, str]:
    return {
        "index.html": f"<!doctype html><h1>Hello {version}</h1><script src='app.js'></script>",
        "app.js": "console.log('hello');",
        "assets/style.css": "h1 { color: teal; }",
    }


def plugin(version: str = "1.0.0", body: str = "return {'embedding': [0.0]}") -> dict[str, str]:
    return {
        "manifest.py": f"feature_extractor_name = 'text_embed'\nversion = '{version}'\n",
        "pipeline.py": "import os\n\n\ndef build_steps():\n    return [os.path.join('a', 'b')]\n",
        "realtime.py": f"def run_inference(inputs):\n    {body}\n",
    }
