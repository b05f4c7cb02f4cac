"""The journal of deploys in flight: a hint that expires, is pruned, and never leaves litter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mixpeek_pulumi.run.journal import TTL_SECONDS, Journal

KEY = ("http://127.0.0.1:1", "app_x", "staging", "ab" * 32)


def test_an_entry_reads_back_until_it_expires(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record(KEY, "dep_1")
    found = journal.lookup(KEY)
    assert found is not None
    assert found.deploy_id == "dep_1"
    assert found.path.parent == tmp_path  # named in the log line that drops it
    assert Journal(tmp_path, ttl=-1).lookup(KEY) is None
    journal.forget(KEY)
    assert journal.lookup(KEY) is None


def test_unreadable_entries_are_no_hint(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record(KEY, "dep_1")
    (path,) = tmp_path.glob("*.json")
    for text in ("{", "[]", '{"deploy_id": 3, "recorded_at": 1}', '{"deploy_id": "d"}'):
        path.write_text(text)
        assert journal.lookup(KEY) is None


def test_expired_entries_and_stray_temporary_files_are_pruned(tmp_path: Path) -> None:
    old = time.time() - TTL_SECONDS - 60
    for name in ("a" * 40 + ".json", "tmpleft.tmp"):
        (tmp_path / name).write_text("{}")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "unrelated.txt").write_text("kept")
    (tmp_path / "unrelated.txt").touch()
    os.utime(tmp_path / "unrelated.txt", (old, old))
    Journal(tmp_path).record(KEY, "dep_new")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "tmpleft.tmp" not in names
    assert "a" * 40 + ".json" not in names
    assert "unrelated.txt" in names
    assert len([n for n in names if n.endswith(".json")]) == 1


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A disk that refuses the write (here a process whose file size limit is 0, as on a
    full disk) costs the hint, raises nothing, and leaves the folder as it was."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from mixpeek_pulumi.run.journal import Journal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        journal = Journal(__import__("pathlib").Path({str(tmp_path)!r}))
        for attempt in range(5):
            journal.record({KEY!r}, f"dep_{{attempt}}")
        print("looked up:", journal.lookup({KEY!r}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "looked up: None" in done.stdout
    assert list(tmp_path.iterdir()) == []
