"""`mixpeek-emulator` as users run it: URL first, clean exit on signals, state kept in --data-dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mixpeek_emulator.state import App, Store, Timing

KEY = "sk_test_cli_key_1234"


@contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixpeek_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            KEY,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        for _ in range(100):
            try:
                httpx.get(f"{url}/_emulator/health", timeout=1)
                break
            except httpx.TransportError:
                import time

                time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_prints_url_first_and_exits_cleanly(sig: signal.Signals) -> None:
    with cli("--app", "seeded-site") as (proc, url):
        response = httpx.get(
            f"{url}/v1/apps/app_seeded_site", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert response.json()["slug"] == "seeded-site"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0


class LogReader(threading.Thread):
    """Follows one deploy's log stream as a client would, noting what it saw and how it ended."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.first_line = threading.Event()
        self.lines: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=60) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
                    if line.startswith("data:"):
                        self.first_line.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.first_line.set()  # also when the stream failed: the test looks at why


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_with_log_streams_open_is_quiet_and_ends_each_stream(sig: signal.Signals) -> None:
    # The build outlasts the test: each stream is waiting for its next line when the signal comes.
    with cli("--app", "streamed-site", "--queue-seconds", "0", "--build-seconds", "3600") as (
        proc,
        url,
    ):
        readers = []
        for _ in range(3):
            deploy = httpx.post(
                f"{url}/v1/apps/app_streamed_site/deploy",
                json={"bundle_s3_key": "app-builds/app_streamed_site/never-uploaded.zip"},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            deploy.raise_for_status()
            path = f"/v1/apps/app_streamed_site/deploys/{deploy.json()['deploy_id']}/logs/stream"
            readers.append(LogReader(url + path))
        for reader in readers:
            reader.start()
        for reader in readers:
            assert reader.first_line.wait(timeout=30)
            assert reader.error is None, reader.error
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        _, err = proc.communicate(timeout=10)
        for reader in readers:
            reader.join(timeout=30)
            assert not reader.is_alive()
            # Ended by the server as a whole message: no "incomplete chunked read".
            assert reader.error is None, reader.error
            assert reader.lines[0].startswith("data: ") and "Build started" in reader.lines[0]
            assert "event: done" not in reader.lines
    assert "Traceback" not in err, err
    assert "CancelledError" not in err, err
    assert "ERROR" not in err, err


def test_state_survives_a_kill_with_a_data_dir(tmp_path: Path) -> None:
    with cli("--data-dir", str(tmp_path)) as (proc, url):
        created = httpx.post(
            f"{url}/v1/apps",
            json={"slug": "kept-site", "meta": {"title": "t"}},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with cli("--data-dir", str(tmp_path)) as (_, url):
        again = httpx.get(
            f"{url}/v1/apps/{created['app_id']}", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert again.json()["slug"] == "kept-site"


def test_a_kill_mid_write_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, Timing())
    store.state.apps["app_a"] = App("app_a", "a-site", "A", 1.0)
    store.save()
    store.state.apps["app_b"] = App("app_b", "b-site", "B", 2.0)

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save()
    monkeypatch.undo()
    assert set(json.loads((tmp_path / "state.json").read_text())["apps"]) == {"app_a"}
    reloaded = Store(tmp_path, Timing())
    assert set(reloaded.state.apps) == {"app_a"}
    assert not list(tmp_path.glob("state.json.*.tmp"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixpeek_emulator", "--api-key", KEY, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_a_port_in_use_is_one_sentence_and_exit_code_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        done = run_cli("--host", "127.0.0.1", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "mixpeek-emulator cannot start: address already in use."


def test_a_data_dir_that_is_a_file_is_one_sentence_and_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a folder")
    done = run_cli("--port", "0", "--data-dir", str(tmp_path / "state"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixpeek-emulator cannot start: file exists")


def test_a_stop_right_after_the_url_is_clean_and_leaves_no_scratch(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mixpeek_emulator", "--api-key", KEY, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("http://127.0.0.1:")
    proc.send_signal(signal.SIGTERM)  # at once, before the server has even started
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_emulator/timing", {"build_seconds": "NaN"}),
        ("/_emulator/timing", {"plugin_seconds": -1}),
        ("/_emulator/faults", {"status": 99}),
        ("/_emulator/faults", {"status": 1000}),
        ("/_emulator/faults", {"action": "delay", "delay": "Infinity"}),
        ("/_emulator/next", {"sse_cut_after": -3}),
        ("/_emulator/timing", {"dns_check_seconds": -1}),
        ("/_emulator/timing", {"tls_seconds": 3601}),
        ("/_emulator/dns", {"misses": -1}),
        ("/_emulator/dns", {"misses": True}),
        ("/_emulator/dns", {"domain": ""}),
        ("/_emulator/dns", {"domain": "a.example.com", "times": 3}),
    ],
)
def test_control_plane_input_is_validated(path: str, body: dict[str, object]) -> None:
    with cli() as (_, url):
        refused = httpx.post(f"{url}{path}", content=json.dumps(body))
        assert refused.status_code == 422
        assert refused.json()["error"]["type"] == "ValidationError"
        # The emulator still answers deploy status after a refused timing change.
        assert httpx.get(f"{url}/_emulator/health").json() == {"ok": True}


def test_unknown_routes_answer_in_the_api_envelope() -> None:
    with cli() as (_, url):
        response = httpx.get(f"{url}/v1/nope", headers={"Authorization": f"Bearer {KEY}"})
        other = httpx.delete(f"{url}/_emulator/health")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "NotFoundError"
    assert response.json()["status"] == 404 and response.json()["success"] is False
    assert other.status_code == 405
    assert other.json()["error"]["type"] == "MethodNotAllowedError"


def test_a_restart_with_the_same_apps_finds_them_instead_of_adding_twins(tmp_path: Path) -> None:
    """A CI job restarts with the same --data-dir and --app: after the app was deleted and its
    slug taken again, or the app renamed, there is one app of that slug, whose id is printed."""
    auth = {"Authorization": f"Bearer {KEY}"}
    args = ("--data-dir", str(tmp_path), "--app", "my-site", "--app", "other-site")
    with cli(*args) as (_, url):
        assert httpx.delete(f"{url}/v1/apps/app_my_site", headers=auth).status_code == 200
        mine = httpx.post(
            f"{url}/v1/apps", headers=auth, json={"slug": "my-site", "meta": {"title": "m"}}
        )
        renamed = httpx.patch(
            f"{url}/v1/apps/app_other_site", headers=auth, json={"slug": "renamed-site"}
        )
        assert renamed.status_code == 200
    with cli(*args) as (proc, url):
        assert proc.stdout is not None
        printed = [proc.stdout.readline().strip() for _ in args[3::2]]  # after the URL line
        mine_now = httpx.get(f"{url}/v1/apps", headers=auth, params={"slug": "my-site"}).json()
        other_now = httpx.get(f"{url}/v1/apps", headers=auth, params={"slug": "other-site"}).json()
    assert [a["app_id"] for a in mine_now["results"]] == [mine.json()["app_id"]]
    [other] = other_now["results"]
    assert other["app_id"] != "app_other_site"  # that id is the renamed app's
    assert sorted(printed) == sorted(
        [f"app {mine.json()['app_id']} my-site", f"app {other['app_id']} other-site"]
    )
