"""docs/reliability.md is written by the reliability tests, one section each (`make
reliability`); `make test` checks that the committed file still lists every case."""

from __future__ import annotations

import os
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
TITLE = "# Reliability: faults and hostile input\n"


def writing() -> bool:
    return os.environ.get("MIXPEEK_WRITE_DOCS") == "1"


def write_section(name: str, lines: list[str]) -> None:
    """Replace (or add) the section between ``<!-- name -->`` markers."""
    text = DOC.read_text() if DOC.exists() else TITLE
    if not text.startswith(TITLE):
        text = TITLE
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    body = "\n".join([begin, *lines, end])
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: body, text) if begin in text else f"{text}\n{body}\n"
    DOC.write_text(text)


def section(name: str) -> str:
    text = DOC.read_text()
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    return text[text.find(begin) : text.find(end)] if begin in text else ""


def normalize(text: str) -> str:
    """Run-specific ids and ports out, so the committed table is stable."""
    text = re.sub(r"\b(dep|app|plu)_[0-9a-f]{12}\b", r"\1_…", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"/tmp/\S+?/(?=[\w.-]+[ :.'])", "…/", text)
    text = re.sub(r"\bm-\d+-\d+\b", "m-…", text)
    return text.replace("|", "\\|")
