"""The exporter's own HTTP server behind TLS and basic auth, as a user runs it: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest
import requests

from .conftest import TOKEN_A
from .test_cli import REPO, free_port, serve_process, write_config
from .test_webconfig import PKI, pki  # noqa: F401  (session fixture with a CA, server and client certs)

PASSWORD = "scrape-password-7f3e"


def _web_config(tmp_path: Path, pki: PKI, client_auth: str = "NoClientCert") -> Path:  # noqa: F811
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    lines = [
        "tls_server_config:",
        f"  cert_file: {pki.server_crt}",
        f"  key_file: {pki.server_key}",
        f"  client_auth_type: {client_auth}",
    ]
    if client_auth != "NoClientCert":
        lines.append(f"  client_ca_file: {pki.ca_crt}")
    lines += ["basic_auth_users:", f"  prometheus: '{password_hash}'"]
    path = tmp_path / "web.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _serve(config: Path, web: Path, port: int) -> subprocess.Popen[str]:
    return serve_process(config, port, "--web.config.file", str(web))


def _wait_ready(url: str, verify: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if requests.get(url + "/readyz", verify=verify, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "exporter never became ready"
        time.sleep(0.1)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=10)
    return err


def test_tls_and_basic_auth_protect_metrics_but_not_the_health_probes(simulator, tmp_path, pki):  # noqa: F811
    _sim, url = simulator
    port = free_port()
    process = _serve(
        write_config(tmp_path, url, databases="[default]"), _web_config(tmp_path, pki), port
    )
    base = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(base, str(pki.ca_crt))
        anonymous = requests.get(base + "/metrics", verify=str(pki.ca_crt), timeout=5)
        wrong = requests.get(
            base + "/metrics",
            verify=str(pki.ca_crt),
            auth=("prometheus", "wrong-password-1"),
            timeout=5,
        )
        right = requests.get(
            base + "/metrics", verify=str(pki.ca_crt), auth=("prometheus", PASSWORD), timeout=5
        )
        landing = requests.get(base + "/", verify=str(pki.ca_crt), timeout=5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        err = _stop(process)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert wrong.status_code == 401
    assert landing.status_code == 401
    assert right.status_code == 200 and "milvus_jobs_exporter_target_up" in right.text
    assert '"event": "http.unauthorized"' in err
    assert "wrong-password-1" not in err and PASSWORD not in err


def test_a_required_client_certificate_refuses_scrapers_without_one(simulator, tmp_path, pki):  # noqa: F811
    _sim, url = simulator
    port = free_port()
    web = _web_config(tmp_path, pki, client_auth="RequireAndVerifyClientCert")
    process = _serve(write_config(tmp_path, url, databases="[default]"), web, port)
    base = f"https://127.0.0.1:{port}"
    client = (str(pki.client_crt), str(pki.client_key))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(base + "/healthz", verify=str(pki.ca_crt), cert=client, timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with_cert = requests.get(
            base + "/metrics",
            verify=str(pki.ca_crt),
            cert=client,
            auth=("prometheus", PASSWORD),
            timeout=5,
        )
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(
                base + "/metrics", verify=str(pki.ca_crt), auth=("prometheus", PASSWORD), timeout=5
            )
        stranger = (str(pki.stranger_crt), str(pki.stranger_key))
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(
                base + "/metrics",
                verify=str(pki.ca_crt),
                cert=stranger,
                auth=("prometheus", PASSWORD),
                timeout=5,
            )
    finally:
        _stop(process)
    assert with_cert.status_code == 200


def test_a_broken_web_config_is_refused_with_exit_2_and_one_line(simulator, tmp_path):
    _sim, url = simulator
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: /nonexistent/server.crt\n  key_file: /nonexistent/server.key\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(write_config(tmp_path, url)),
            "--web.config.file",
            str(web),
        ],
        cwd=REPO,
        env={**os.environ, "MILVUS_TOKEN": TOKEN_A},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "web config error" in result.stderr and "cert_file" in result.stderr
    assert "Traceback" not in result.stderr
