"""Certificate verification is always on, and a private CA works through SSL_CERT_FILE."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mixpeek_emulator.app import create_app
from mixpeek_emulator.server import start_in_thread
from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.retry import RetryPolicy
from mixpeek_pulumi.errors import ApiConnectionError

KEY = "sk_test_tls_key_0001"
OPENSSL = shutil.which("openssl")


def make_ca_and_server_cert(tmp: Path) -> tuple[Path, Path, Path]:
    assert OPENSSL
    ca_key, ca, key, csr, cert = (
        tmp / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = tmp / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command makes the test certificates")
def test_private_ca_through_ssl_cert_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    emulator = create_app(api_key=KEY, apps=("tls-site",))
    running = start_in_thread(emulator, tls=(str(cert), str(key)))
    try:
        assert running.url.startswith("https://127.0.0.1:")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        no_retry = RetryPolicy(max_attempts=1)
        with (
            MixpeekClient(api_key=KEY, base_url=running.url, retry=no_retry) as client,
            pytest.raises(ApiConnectionError) as info,
        ):
            client.get_app("app_tls_site")
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)

        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with MixpeekClient(api_key=KEY, base_url=running.url, retry=no_retry) as client:
            assert client.get_app("app_tls_site").slug == "tls-site"
    finally:
        running.stop()
