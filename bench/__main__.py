"""`make bench`: how much time and how many requests the provider adds, against baselines
measured in the same run on the same machine. Writes docs/benchmarks.md. Never asserted."""

from __future__ import annotations

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mixpeek_pulumi import bundle  # noqa: E402
from mixpeek_pulumi.client import MixpeekClient  # noqa: E402
from mixpeek_pulumi.models import DeployRequest  # noqa: E402

KEY = "sk_bench_key_0000000000"
OUT = ROOT / "docs" / "benchmarks.md"
REPORT: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    REPORT.append(text)


def median(values: list[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------ fixtures


class Emulator:
    """mixpeek-emulator in its own process, as users run it."""

    def __init__(self, **timing: float) -> None:
        args = [sys.executable, "-m", "mixpeek_emulator", "--port", "0", "--api-key", KEY]
        for name, value in timing.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        )

    def app(self, slug: str) -> str:
        return str(
            self.http.post("/v1/apps", json={"slug": slug, "meta": {"title": slug}}).json()[
                "app_id"
            ]
        )

    def timing(self, **values: float) -> None:
        self.http.post("/_emulator/timing", json=values).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return list(self.http.get("/_emulator/requests").json())

    def reset(self) -> None:
        self.http.post("/_emulator/reset").raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=15)


@contextmanager
def emulator(**timing: float) -> Iterator[Emulator]:
    emu = Emulator(**timing)
    try:
        yield emu
    finally:
        emu.close()


def provider_for(emu: Emulator) -> Any:
    from pulumi.dynamic import Config, ConfigureRequest

    from mixpeek_pulumi.resources.app_deploy import AppDeployProvider

    provider = AppDeployProvider()
    provider.configure(
        ConfigureRequest(Config({"mixpeek:apiKey": KEY, "mixpeek:baseUrl": emu.url}, "bench"))
    )
    return provider


def site(root: Path, size: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<h1>bench</h1>")
    (root / "app.js").write_text("console.log('x');\n" * 200)
    if size:
        write_blob(root / "media.bin", size)
    return root


def write_blob(path: Path, size: int) -> None:
    block = random.randbytes(1 << 20)
    with path.open("wb") as handle:
        for _ in range(size >> 20):
            handle.write(block)


def app_props(app_id: str, bundle_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "resource_name": "bench",
        "app_id": app_id,
        "bundle": str(bundle_path),
        "environment": "staging",
        **extra,
    }


def iso_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------- 1 latency


def completion_latency(tmp: Path) -> None:
    say("## 1. Completion latency")
    say()
    say("Time from the emulator marking the deploy `complete` to the resource's create returning")
    say("(median of the runs), against a plain loop polling GET status every 2 s.")
    say()
    say("| build | runs | AppDeploy create | 2 s poll loop | ratio |")
    say("| --- | --- | --- | --- | --- |")
    queue = 0.2
    with emulator(queue_seconds=queue) as emu:
        provider = provider_for(emu)
        bundle_dir = site(tmp / "latency")
        for build, runs in ((1.0, 5), (10.0, 3)):
            emu.timing(build_seconds=build)
            ours: list[float] = []
            naive: list[float] = []
            for i in range(runs):
                app_id = emu.app(f"lat-{int(build)}-{i}")
                result = provider.create(app_props(app_id, bundle_dir, poll_interval_seconds=2))
                returned = time.time()
                status = emu.http.get(
                    f"/v1/apps/{app_id}/deploys/{result.outs['deploy_id']}"
                ).json()
                ours.append(returned - (iso_epoch(status["queued_at"]) + queue + build))
                naive.append(naive_poll(emu, app_id, bundle_dir, build, queue))
            ratio = median(naive) / max(median(ours), 1e-6)
            say(
                f"| {build:g} s | {runs} | {median(ours) * 1000:.0f} ms | {median(naive) * 1000:.0f} ms | {ratio:.0f}x faster |"
            )
    say()


def naive_poll(emu: Emulator, app_id: str, bundle_dir: Path, build: float, queue: float) -> float:
    files = bundle.collect(bundle_dir, bundle.Excludes())
    archive = bundle.write_archive(files)
    try:
        with MixpeekClient(api_key=KEY, base_url=emu.url) as api:
            slot = api.get_upload_url(app_id, "b.zip")
            api.put_object(slot.upload_url, archive.path, content_type="application/zip")
            deploy = api.deploy(
                app_id,
                DeployRequest(
                    message="naive", environment="staging", bundle_s3_key=slot.bundle_s3_key
                ),
            )
            while True:
                status = api.get_deploy(app_id, deploy.deploy_id)
                if status.status in ("complete", "failed"):
                    returned = time.time()
                    break
                time.sleep(2)
    finally:
        archive.path.unlink(missing_ok=True)
    assert status.queued_at is not None
    return returned - (iso_epoch(status.queued_at) + queue + build)


# --------------------------------------------------------------------------- 2 overhead


def overhead(tmp: Path) -> None:
    say("## 2. Overhead per deploy")
    say()
    say("Create's wall time minus the emulator's queue and build time (1 s), split into packaging")
    say("(digest and zip), upload (upload-url and PUT) and the rest (deploy request, waiting, the")
    say("final reads). The 200 MB bundle is incompressible media, the worst case for packaging.")
    say()
    say("| bundle | create | overhead | packaging | upload | rest |")
    say("| --- | --- | --- | --- | --- | --- |")
    queue, build = 0.2, 1.0
    with emulator(queue_seconds=queue, build_seconds=build) as emu:
        provider = provider_for(emu)
        for label, size in (("1 MB", 1 << 20), ("200 MB", 200 << 20)):
            bundle_dir = site(tmp / f"over-{size}", size)
            pack: list[float] = []
            up: list[float] = []
            total: list[float] = []
            for i in range(3):
                start = time.perf_counter()
                files = bundle.collect(bundle_dir, bundle.Excludes())
                bundle.digest(files)
                archive = bundle.write_archive(files)
                pack.append(time.perf_counter() - start)
                app_id = emu.app(f"over-{size >> 20}-{i}")
                with MixpeekClient(api_key=KEY, base_url=emu.url) as api:
                    start = time.perf_counter()
                    slot = api.get_upload_url(app_id, "b.zip")
                    api.put_object(
                        slot.upload_url,
                        archive.path,
                        content_type="application/zip",
                        content_md5=archive.md5_base64,
                    )
                    up.append(time.perf_counter() - start)
                archive.path.unlink()
                start = time.perf_counter()
                provider.create(app_props(app_id, bundle_dir, poll_interval_seconds=2))
                total.append(time.perf_counter() - start)
            extra = median(total) - queue - build
            rest = extra - median(pack) - median(up)
            say(
                f"| {label} | {median(total):.2f} s | {extra:.2f} s | {median(pack):.2f} s | {median(up):.2f} s | {rest:.2f} s |"
            )
    say()


# -------------------------------------------------------------------------- 3 packaging


def make_tree(root: Path, files: int = 10_000, total: int = 200 << 20) -> Path:
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghijklmnop ") for _ in range(8)) for _ in range(512)]
    each = total // files
    for i in range(files):
        folder = root / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 10 < 7:  # text: scripts, styles, html
            data = b" ".join(rng.choice(words) for _ in range(each // 9 + 1))[:each]
            (folder / f"f{i}.js").write_bytes(data)
        else:  # media: already compressed
            (folder / f"f{i}.png").write_bytes(rng.randbytes(each))
    (root / "index.html").write_text("<h1>x</h1>")
    return root


def timed(fn: Callable[[], object], runs: int = 3) -> float:
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return median(values)


def packaging(tmp: Path) -> None:
    say("## 3. Packaging")
    say()
    tree = make_tree(tmp / "tree")
    out = tmp / "zip-out"
    out.mkdir()

    def ours() -> None:
        files = bundle.collect(tree, bundle.Excludes())
        bundle.digest(files)  # check's digest; create repeats it while zipping
        archive = bundle.write_archive(files, directory=str(out))
        archive.path.unlink()

    def ours_zip() -> None:
        files = bundle.collect(tree, bundle.Excludes())
        archive = bundle.write_archive(files, directory=str(out))  # computes the digest too
        archive.path.unlink()

    def zip_cli() -> None:
        target = out / "cli.zip"
        target.unlink(missing_ok=True)
        subprocess.run(["zip", "-X", "-r", "-q", str(target), "."], cwd=tree, check=True)

    def sha256sum() -> None:
        subprocess.run(
            "find . -type f -print0 | sort -z | xargs -0 sha256sum > /dev/null",
            shell=True,
            cwd=tree,
            check=True,
        )

    t_ours, t_zip, t_sum = timed(ours), timed(zip_cli), timed(sha256sum)
    t_create = timed(ours_zip)
    say("A tree of 10,000 files, 200 MB (70% text, 30% already-compressed media), median of 3.")
    say()
    say("| what | time | time ÷ ours |")
    say("| --- | --- | --- |")
    say(f"| ours: walk + digest (check) + deterministic zip (create) | {t_ours:.2f} s | 1.00 |")
    say(
        f"| ours: what create does (walk + zip, digest computed while zipping) | {t_create:.2f} s | {t_create / t_ours:.2f} |"
    )
    say(f"| `zip -X -r` | {t_zip:.2f} s | {t_zip / t_ours:.2f} |")
    say(f"| `sha256sum` over every file | {t_sum:.2f} s | {t_sum / t_ours:.2f} |")
    say(f"| `zip -X -r` + `sha256sum` | {t_zip + t_sum:.2f} s | {(t_zip + t_sum) / t_ours:.2f} |")
    say()
    peak_memory(tmp)
    noop_preview(tree)


PEAK_SCRIPT = """
import resource, sys, time
from mixpeek_pulumi import bundle
from mixpeek_pulumi.client import MixpeekClient
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
url, key, app_id, path = sys.argv[1:5]
files = bundle.collect(__import__('pathlib').Path(path), bundle.Excludes())
archive = bundle.write_archive(files)
with MixpeekClient(api_key=key, base_url=url) as api:
    slot = api.get_upload_url(app_id, 'big.zip')
    api.put_object(slot.upload_url, archive.path, content_type='application/zip', content_md5=archive.md5_base64)
archive.path.unlink()
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(tmp: Path) -> None:
    big = site(tmp / "big", 1 << 30)
    with emulator() as emu:
        app_id = emu.app("big-site")
        done = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, emu.url, KEY, app_id, str(big)],
            capture_output=True,
            text=True,
            check=True,
        )
    base_kb, peak_kb = (int(v) for v in done.stdout.split())
    say("Peak memory (max RSS) of a process that packages and uploads a 1 GB bundle (one 1 GB")
    say(
        f"file of incompressible data): **{peak_kb / 1024:.0f} MB** (target: under 100 MB). Of that,"
    )
    say(
        f"{base_kb / 1024:.0f} MB is the interpreter with pulumi, httpx and pydantic imported, before"
    )
    say(f"packaging starts; packaging and uploading added {(peak_kb - base_kb) / 1024:.0f} MB.")
    say()
    shutil.rmtree(big)


def noop_preview(tree: Path) -> None:
    from mixpeek_pulumi.resources.app_deploy import AppDeployProvider

    provider = AppDeployProvider()
    props = app_props("app_x", tree)
    olds = {**props, **provider.check({}, props).inputs, "live": True}

    def preview() -> None:
        news = provider.check(olds, props).inputs
        assert not provider.diff("id", olds, news).changes

    t = timed(preview, runs=5)
    say("## 4. No-op preview")
    say()
    say(f"`check` + `diff` of an unchanged 10,000-file, 200 MB bundle: **{t:.2f} s** (median of 5;")
    say(
        "target under 1 s). Every byte is hashed on every preview, so no content change can be missed"
    )
    say("(no mtime cache that a `touch -r` or a same-size rewrite could fool).")
    victim = next(tree.rglob("*.js"))
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + b"!")
    changed = provider.diff("id", olds, provider.check(olds, props).inputs).changes
    victim.write_bytes(original)
    say(f"A one-byte change in one of the 10,000 files is seen: {'yes' if changed else 'NO'}.")
    say()


# ------------------------------------------------------------------------------ 5 upload


def upload(tmp: Path) -> None:
    say("## 5. Upload")
    say()
    path = tmp / "upload.bin"
    write_blob(path, 256 << 20)
    with emulator() as emu:
        app_id = emu.app("up-site")
        ours: list[float] = []
        curl: list[float] = []
        with MixpeekClient(api_key=KEY, base_url=emu.url) as api:
            for _ in range(3):
                slot = api.get_upload_url(app_id, "u.zip")
                start = time.perf_counter()
                api.put_object(slot.upload_url, path, content_type="application/zip")
                ours.append(time.perf_counter() - start)
                slot = api.get_upload_url(app_id, "u.zip")
                start = time.perf_counter()
                subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-f",
                        "-o",
                        "/dev/null",
                        "-T",
                        str(path),
                        "-H",
                        "Content-Type: application/zip",
                        slot.upload_url,
                    ],
                    check=True,
                )
                curl.append(time.perf_counter() - start)
    mb = 256
    ratio = median(curl) / median(ours)
    say("PUT of a 256 MB file to the same emulator storage URL, median of 3:")
    say()
    say("| client | throughput | ratio |")
    say("| --- | --- | --- |")
    say(f"| ours (httpx, streamed from disk) | {mb / median(ours):.0f} MB/s | {ratio:.2f} |")
    say(f"| `curl -T` | {mb / median(curl):.0f} MB/s | 1.00 |")
    say()
    path.unlink()


# ---------------------------------------------------------------------------- 6 requests


def requests_per_deploy(tmp: Path) -> None:
    from pulumi.dynamic import Config, ConfigureRequest

    from mixpeek_pulumi.resources.plugin_deployment import PluginDeploymentProvider

    say("## 6. Requests per deploy")
    say()
    build, plugin_time = 10.0, 10.0
    with emulator(queue_seconds=0.2, build_seconds=build, plugin_seconds=plugin_time) as emu:
        provider = provider_for(emu)
        app_id = emu.app("req-site")
        emu.reset()
        provider.create(app_props(app_id, site(tmp / "req")))
        app_requests = emu.requests()
        plugins = PluginDeploymentProvider()
        plugins.configure(
            ConfigureRequest(Config({"mixpeek:apiKey": KEY, "mixpeek:baseUrl": emu.url}, "bench"))
        )
        source = tmp / "plugin"
        source.mkdir()
        (source / "manifest.py").write_text("name = 'x'\n")
        (source / "pipeline.py").write_text("steps = []\n")
        emu.reset()
        plugins.create(
            {
                "resource_name": "p",
                "namespace_id": "ns_b",
                "name": "bench_plugin",
                "version": "1.0.0",
                "source": str(source),
            }
        )
        plugin_requests = emu.requests()
    naive_app = 3 + int((0.2 + build) // 2) + 1
    naive_plugin = 4 + int(plugin_time // 10) + 1
    say(
        f"One create against a {build:g} s build / {plugin_time:g} s plugin rollout, counted by the emulator;"
    )
    say("the naive poller makes the same calls and polls at the documented cadence (apps: none is")
    say("documented, so 2 s; plugins: every 10 s).")
    say()
    say("| resource | ours | naive poller | what ours adds |")
    say("| --- | --- | --- | --- |")
    say(f"| AppDeploy | {len(app_requests)} | {naive_app} | {describe(app_requests)} |")
    say(
        f"| PluginDeployment | {len(plugin_requests)} | {naive_plugin} | {describe(plugin_requests)} |"
    )
    say()


def describe(log: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in log:
        path = r["path"]
        kind = (
            "log stream"
            if path.endswith("/logs/stream")
            else "status"
            if "/deploys/" in path or path.endswith("/status")
            else "storage PUT"
            if path.startswith("/_storage")
            else path.rsplit("/", 1)[-1]
            if r["method"] == "POST"
            else "versions"
            if path.endswith("/versions")
            else "app/plugin GET"
        )
        counts[f"{r['method']} {kind}"] = counts.get(f"{r['method']} {kind}", 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


# -------------------------------------------------------------------------------- 7 scale


def scale(tmp: Path) -> None:
    import pulumi

    from mixpeek_pulumi import AppDeploy
    from tests.engine import FakeEngine, ProviderHost, run_program

    say("## 7. Scale")
    say()
    build, queue = 2.0, 0.2
    with emulator(queue_seconds=queue, build_seconds=build) as emu:
        host = ProviderHost(
            project="bench", env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp / "inflight")}
        )
        try:
            engine = FakeEngine(
                host,
                config={"mixpeek:apiKey": KEY, "mixpeek:baseUrl": emu.url},
                secret_keys={"mixpeek:apiKey"},
                project="bench",
            )
            one_app = emu.app("scale-one")
            one_dir = site(tmp / "one")
            start = time.perf_counter()
            run_program(
                engine, lambda: AppDeploy("one", app_id=one_app, bundle=str(one_dir)) and None
            )
            single = time.perf_counter() - start
            apps = [emu.app(f"scale-{i}") for i in range(20)]
            dirs = [site(tmp / f"scale{i}") for i in range(20)]

            def program() -> None:
                AppDeploy("one", app_id=one_app, bundle=str(one_dir))
                for i in range(20):
                    d = AppDeploy(f"s{i}", app_id=apps[i], bundle=str(dirs[i]))
                    pulumi.export(f"d{i}", d.deploy_id)

            start = time.perf_counter()
            run_program(engine, program)
            total = time.perf_counter() - start
        finally:
            host.close()
    ideal = 5 * single  # the provider host serves 4 calls at once: 20 deploys take 5 rounds
    say(
        f"20 AppDeploy resources in one program through the real provider host ({build:g} s builds)."
    )
    say(
        f"One deploy alone took {single:.2f} s; the ideal for 20 on the host's 4 worker threads is 5"
    )
    say(f"rounds = {ideal:.2f} s. Measured: **{total:.2f} s**, {total / ideal:.2f}x the ideal.")
    say()


# --------------------------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> int:
    say("# Benchmarks")
    say()
    say(f"Measured by `make bench` on {datetime.now().date()}: {machine()}.")
    say("Every figure is compared with a baseline measured in the same run on the same machine;")
    say("the emulator runs in its own process, as it would for users. Nothing here is asserted by")
    say("the test suite.")
    say()
    with tempfile.TemporaryDirectory(prefix="mixpeek-bench-") as tmp:
        os.environ.setdefault("MIXPEEK_PULUMI_STATE_DIR", str(Path(tmp) / "inflight"))
        for section in (
            completion_latency,
            overhead,
            packaging,
            upload,
            requests_per_deploy,
            scale,
        ):
            section(Path(tmp))
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        say(notes.read_text().rstrip())
    OUT.write_text("\n".join(REPORT) + "\n")
    print(f"\nwrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
