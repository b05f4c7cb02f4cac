"""The README's "Try it" section promises only what a fresh clone has: every command it shows is
a target of the Makefile or a script of this repository, every variable it hands `make` is one
the target reads, and every file it points at exists."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.pulumi_cli import ROOT

README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def commands(text: str) -> list[str]:
    """Each command of the section's shell blocks, without its comment."""
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def targets() -> dict[str, str]:
    """Each target of the Makefile and the text of its rule (target-specific lines included)."""
    rules: dict[str, str] = {}
    current = None
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z][\w-]*):", line)
        if found:
            current = found.group(1)
            rules[current] = rules.get(current, "") + line + "\n"
        elif line.startswith("\t") and current is not None:
            rules[current] += line + "\n"
        elif not line.strip():
            current = None
    return rules


def test_the_section_shows_commands() -> None:
    assert len(commands(section("Try it"))) >= 3


def test_every_command_in_try_it_is_a_make_target_or_a_script() -> None:
    rules = targets()
    for command in commands(section("Try it")):
        words = command.split()
        if words[0] == "make":
            target = next(w for w in words[1:] if "=" not in w)
            assert target in rules, f"`{command}`: the Makefile has no target {target!r}"
            for word in words[1:]:
                if "=" in word and not word.startswith("-"):
                    variable = word.split("=", 1)[0]
                    assert f"$({variable})" in rules[target], (
                        f"`{command}`: make {target} does not read {variable}"
                    )
        else:
            script = words[1] if words[0] in ("python", "python3") else words[0]
            module = words[2] if words[1] == "-m" else None
            path = ROOT / (module.replace(".", "/") + ".py" if module else script)
            assert path.is_file(), f"`{command}` is neither a make target nor a script here"


def test_every_file_try_it_points_at_exists() -> None:
    text = section("Try it")
    named = set(re.findall(r"`((?:scripts|examples|docs|tests)/[\w./-]+)`", text))
    named |= set(re.findall(r"\]\(((?:scripts|examples|docs|tests)/[\w./-]+)", text))
    assert named, "the section names no file"
    for path in sorted(named):
        assert (ROOT / Path(path)).exists(), f"Try it names {path}, which is not here"
