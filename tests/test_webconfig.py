"""The exporter-toolkit web config: loading, refusing bad files, basic auth and real TLS.

Certificates are made at test time with the ``openssl`` command line (a CA, a server certificate
for 127.0.0.1, a client certificate, and a second CA that the server does not trust), so nothing
secret or expiring is checked in.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests

from exporter.web import basicauth, webconfig
from exporter.web.webconfig import AuthResult, WebConfig, WebConfigError, load_web_config

# bcrypt's cheapest costs keep the suite fast; the code treats every cost alike.
ALICE_PASSWORD = "correct horse battery staple"
ALICE_HASH = bcrypt.hashpw(ALICE_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
BOB_PASSWORD = "hunter2"
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()

OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:prometheus.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


@dataclass(frozen=True)
class PKI:
    directory: Path
    ca_crt: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path
    other_key: Path
    stranger_crt: Path
    stranger_key: Path


def _openssl(directory: Path, *arguments: str) -> None:
    subprocess.run(
        ["openssl", *arguments], cwd=directory, check=True, capture_output=True, timeout=60
    )


def _make_pki(directory: Path) -> None:
    (directory / "openssl.cnf").write_text(OPENSSL_CONFIG)
    new_ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for ca in ("ca", "stranger-ca"):
        _openssl(
            directory,
            *("req", "-x509", "-new", *new_ec_key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt"),
            *("-days", "2", "-subj", f"/CN={ca}", "-config", "openssl.cnf", "-extensions", "ca"),
        )
    for name, ca, extensions in (
        ("server", "ca", "server"),
        ("client", "ca", "client"),
        ("stranger", "stranger-ca", "client"),
    ):
        _openssl(
            directory,
            *("req", "-new", *new_ec_key, "-keyout", f"{name}.key", "-out", f"{name}.csr"),
            *("-subj", f"/CN={name}", "-config", "openssl.cnf"),
        )
        _openssl(
            directory,
            *("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"),
            *("-CAcreateserial", "-out", f"{name}.crt", "-days", "2"),
            *("-extfile", "openssl.cnf", "-extensions", extensions),
        )
    _openssl(
        directory,
        *("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-out", "other.key"),
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl command line is required in CI (Debian package openssl)")
        pytest.skip("the openssl command line is needed to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    _make_pki(directory)
    return PKI(
        directory=directory,
        ca_crt=directory / "ca.crt",
        server_crt=directory / "server.crt",
        server_key=directory / "server.key",
        client_crt=directory / "client.crt",
        client_key=directory / "client.key",
        other_key=directory / "other.key",
        stranger_crt=directory / "stranger.crt",
        stranger_key=directory / "stranger.key",
    )


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "web-config.yml"
        path.write_text(text)
        return path

    return write


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def users_config() -> WebConfig:
    return WebConfig(basic_auth_users={"alice": ALICE_HASH, "bob": BOB_HASH})


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every hash that ``bcrypt.checkpw`` is asked to compare against, in order."""
    calls: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed_password: bytes) -> bool:
        calls.append(hashed_password)
        return real_checkpw(password, hashed_password)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", counting_checkpw)
    return calls


# Loading valid files


def test_file_with_only_headers_serves_plain_http_without_auth(write_config) -> None:
    config = load_web_config(
        write_config(
            "http_server_config:\n"
            "  headers:\n"
            "    X-Frame-Options: deny\n"
            "    X-Content-Type-Options: nosniff\n"
            "    Content-Security-Policy: ''\n"
        )
    )

    assert config.tls is None
    assert config.ssl_context() is None
    assert not config.auth_required
    assert config.check_basic_auth(None) == AuthResult(ok=True, user=None)
    assert dict(config.headers) == {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}
    assert config.warnings == ()


def test_empty_file_is_accepted_with_a_warning(write_config) -> None:
    config = load_web_config(write_config(""))

    assert config.tls is None and not config.auth_required
    assert len(config.warnings) == 1 and "empty" in config.warnings[0]


def test_relative_certificate_paths_are_read_from_the_config_directory(
    pki: PKI, tmp_path: Path
) -> None:
    config_dir = tmp_path / "etc"
    (config_dir / "tls").mkdir(parents=True)
    for source in (pki.server_crt, pki.server_key, pki.ca_crt):
        shutil.copy(source, config_dir / "tls" / source.name)
    config_path = config_dir / "web.yml"
    config_path.write_text(
        "tls_server_config:\n"
        "  cert_file: tls/server.crt\n"
        "  key_file: tls/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: tls/ca.crt\n"
        "  min_version: TLS13\n"
    )

    config = load_web_config(config_path)

    assert config.tls is not None
    assert config.tls.cert_file == str(config_dir / "tls" / "server.crt")
    assert config.tls.client_ca_file == str(config_dir / "tls" / "ca.crt")
    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3


def test_inline_pem_certificate_and_key_load_like_files(pki: PKI, write_config) -> None:
    def indented(path: Path) -> str:
        return "".join(f"    {line}\n" for line in path.read_text().splitlines())

    config = load_web_config(
        write_config(
            "tls_server_config:\n"
            f"  cert: |\n{indented(pki.server_crt)}"
            f"  key: |\n{indented(pki.server_key)}"
        )
    )

    assert config.ssl_context() is not None
    assert "PRIVATE KEY" not in repr(config)


def test_go_only_settings_are_accepted_with_one_warning_each(pki: PKI, write_config) -> None:
    config = load_web_config(
        write_config(
            "tls_server_config:\n"
            f"  cert_file: {pki.server_crt}\n"
            f"  key_file: {pki.server_key}\n"
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
            "  curve_preferences: [X25519]\n"
            "  prefer_server_cipher_suites: false\n"
            "http_server_config:\n"
            "  http2: true\n"
            "rate_limit:\n"
            "  interval: 1s\n"
            "  burst: 20\n"
        )
    )

    warned_keys = [warning.split(": ")[1] for warning in config.warnings]
    assert warned_keys == [
        "tls_server_config.cipher_suites",
        "tls_server_config.curve_preferences",
        "http_server_config.http2",
        "rate_limit",
    ]
    context = config.ssl_context()
    assert context is not None
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE


@pytest.mark.parametrize(
    ("client_auth_type", "verify_mode", "warns"),
    [
        pytest.param("NoClientCert", ssl.CERT_NONE, False, id="NoClientCert"),
        pytest.param("RequestClientCert", ssl.CERT_NONE, True, id="RequestClientCert"),
        pytest.param("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL, False, id="VerifyIfGiven"),
        pytest.param("RequireAnyClientCert", ssl.CERT_REQUIRED, True, id="RequireAny"),
        pytest.param("RequireClientCert", ssl.CERT_REQUIRED, True, id="old RequireClientCert"),
        pytest.param("RequireAndVerifyClientCert", ssl.CERT_REQUIRED, False, id="RequireAndVerify"),
    ],
)
def test_client_auth_types_map_to_python_verify_modes(
    pki: PKI, write_config, client_auth_type: str, verify_mode: ssl.VerifyMode, warns: bool
) -> None:
    ca_line = "" if verify_mode == ssl.CERT_NONE else f"  client_ca_file: {pki.ca_crt}\n"
    config = load_web_config(
        write_config(
            "tls_server_config:\n"
            f"  cert_file: {pki.server_crt}\n"
            f"  key_file: {pki.server_key}\n"
            f"  client_auth_type: {client_auth_type}\n" + ca_line
        )
    )

    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == verify_mode
    assert any("client_auth_type" in warning for warning in config.warnings) == warns


def test_key_file_readable_by_other_users_is_warned_about(
    pki: PKI, write_config, tmp_path: Path
) -> None:
    key = tmp_path / "server.key"
    shutil.copy(pki.server_key, key)
    key.chmod(0o644)

    config = load_web_config(
        write_config(f"tls_server_config:\n  cert_file: {pki.server_crt}\n  key_file: {key}\n")
    )

    assert [warning.split(": ")[1] for warning in config.warnings] == ["tls_server_config.key_file"]


def test_basic_auth_without_tls_warns_that_passwords_travel_in_clear_text(write_config) -> None:
    config = load_web_config(write_config(f"basic_auth_users:\n  alice: {ALICE_HASH}\n"))

    assert config.auth_required
    assert any("clear text" in warning for warning in config.warnings)


def test_loaded_config_never_shows_a_hash_in_its_repr(write_config) -> None:
    config = load_web_config(write_config(f"basic_auth_users:\n  alice: {ALICE_HASH}\n"))

    assert ALICE_HASH not in repr(config)
    assert ALICE_HASH not in " ".join(config.warnings)


# Refusing bad files: one line per problem, naming the file and the key path


BAD_CONFIGS = [
    pytest.param(
        "tls_server_confg:\n  cert_file: server.crt\n",
        "tls_server_confg: unknown key (did you mean 'tls_server_config'?)",
        id="unknown top-level key",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  min_verison: TLS13\n",
        "tls_server_config.min_verison: unknown key (did you mean 'min_version'?)",
        id="unknown tls key",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: {server_key}\n",
        "tls_server_config.cert_file: cannot read {config_dir}/missing.crt: "
        "No such file or directory",
        id="missing cert file",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {other_key}\n",
        "tls_server_config.key_file: {other_key} does not match the certificate in {server_crt}",
        id="key not matching cert",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_key}\n  key_file: {server_key}\n",
        "tls_server_config.cert_file: {server_key} holds no PEM certificate",
        id="cert file without a certificate",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_crt}\n",
        "tls_server_config.key_file: {server_crt} holds no usable PEM private key",
        id="key file without a key",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n",
        "tls_server_config.key_file: missing: TLS needs key_file (or an inline key)",
        id="cert without key",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  min_version: TLS1.2\n",
        "tls_server_config.min_version: unknown TLS version 'TLS1.2' (did you mean 'TLS12'?)",
        id="bad TLS version",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  min_version: TLS13\n  max_version: TLS12\n",
        "tls_server_config.max_version: is lower than min_version",
        id="max version below min version",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n",
        "tls_server_config.client_ca_file: missing: client_auth_type RequireAndVerifyClientCert "
        "verifies client certificates against it",
        id="verifying client auth without a CA",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_auth_type: VerifyClientCertIfGiven\n",
        "tls_server_config.client_ca_file: missing: client_auth_type VerifyClientCertIfGiven "
        "verifies client certificates against it",
        id="optional verifying client auth without a CA",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCerts\n  client_ca_file: {ca_crt}\n",
        "tls_server_config.client_auth_type: unknown client auth type "
        "'RequireAndVerifyClientCerts' (did you mean 'RequireAndVerifyClientCert'?)",
        id="unknown client auth type",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_ca_file: {ca_crt}\n",
        "tls_server_config.client_auth_type: a client CA is given but NoClientCert never asks "
        "for a client cert",
        id="client CA without client auth",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {server_key}\n",
        "tls_server_config.client_ca_file: {server_key} holds no PEM certificate",
        id="client CA file without a certificate",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: {server_crt}\n  key_file: {server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca_crt}\n"
        "  client_allowed_sans: [prometheus.example]\n",
        "tls_server_config.client_allowed_sans: not supported here",
        id="client SAN allow-list that cannot be enforced",
    ),
    pytest.param(
        "tls_server_config:\n  cert: inline\n  cert_file: {server_crt}\n  key_file: {server_key}\n",
        "tls_server_config.cert_file: give either cert or cert_file, not both",
        id="inline cert and cert file",
    ),
    pytest.param(
        "http_server_config:\n  headers:\n    X-Frame-Option: deny\n",
        "http_server_config.headers.X-Frame-Option: this header cannot be configured "
        "(did you mean 'X-Frame-Options'?)",
        id="header that cannot be configured",
    ),
    pytest.param(
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin, got 'allow'",
        id="header value outside its enumeration",
    ),
    pytest.param(
        'http_server_config:\n  headers:\n    Strict-Transport-Security: "max-age=1\\nX-Evil: 1"\n',
        "http_server_config.headers.Strict-Transport-Security: must be one line (no CR or LF)",
        id="header value splitting the response",
    ),
    pytest.param(
        'http_server_config:\n  headers:\n    Content-Security-Policy: "default-src \u20ac"\n',
        "http_server_config.headers.Content-Security-Policy: must be printable ASCII",
        id="header value HTTP cannot carry",
    ),
    pytest.param(
        "http_server_config:\n  http2: maybe\n",
        "http_server_config.http2: expected true or false, got 'maybe'",
        id="non-boolean http2",
    ),
    pytest.param(
        "basic_auth_users:\n  alice: plain-text-password\n",
        "basic_auth_users.alice: is not a bcrypt hash",
        id="password instead of a hash",
    ),
    pytest.param(
        "basic_auth_users:\n  alice: '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/'\n",
        "basic_auth_users.alice: is not a bcrypt hash",
        id="md5-crypt hash",
    ),
    pytest.param(
        "basic_auth_users:\n  alice: {alice_hash}\n  alice: {alice_hash}\n",
        "basic_auth_users.alice: duplicate key (only one may be given)",
        id="user given twice",
    ),
    pytest.param(
        "- tls_server_config\n",
        "the file must be a mapping of keys, not a list",
        id="list instead of mapping",
    ),
    pytest.param(
        "tls_server_config: [\n",
        "invalid YAML: ",
        id="invalid YAML",
    ),
]


@pytest.mark.parametrize(("text", "expected_line"), BAD_CONFIGS)
def test_bad_config_is_refused_with_one_line_naming_the_key_path(
    pki: PKI, tmp_path: Path, text: str, expected_line: str
) -> None:
    names = {
        "server_crt": pki.server_crt,
        "server_key": pki.server_key,
        "other_key": pki.other_key,
        "ca_crt": pki.ca_crt,
        "config_dir": tmp_path,
        "alice_hash": ALICE_HASH,
    }
    path = tmp_path / "web.yml"
    path.write_text(text.format(**names))

    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)

    lines = str(raised.value).splitlines()
    assert len(lines) == 1, lines
    located = re.match(rf"{re.escape(str(path))}:[0-9]+: ", lines[0])
    assert located, f"no file and line in {lines[0]}"
    assert lines[0][located.end() :].startswith(expected_line.format(**names)), lines[0]


def test_every_problem_in_a_file_is_reported_at_once(write_config) -> None:
    path = write_config(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  min_version: TLS14\n"
        "basic_auth_users:\n"
        "  alice: nope\n"
        "rate_limits: {}\n"
    )

    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)

    key_paths = sorted(line.split(": ")[1] for line in str(raised.value).splitlines())
    assert key_paths == [
        "basic_auth_users.alice",
        "rate_limits",
        "tls_server_config.key_file",
        "tls_server_config.min_version",
    ]


def test_refused_users_never_show_their_hash_or_password(write_config) -> None:
    truncated_hash = ALICE_HASH[:-1]
    path = write_config(
        f"basic_auth_users:\n  alice: '{truncated_hash}'\n  bob: {BOB_PASSWORD}\n  carol: 12345\n"
    )

    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)

    message = str(raised.value)
    assert len(message.splitlines()) == 3
    assert truncated_hash not in message
    assert BOB_PASSWORD not in message
    assert "12345" not in message


def test_encrypted_key_is_refused_without_prompting_for_a_password(
    pki: PKI, write_config, tmp_path: Path
) -> None:
    encrypted = tmp_path / "encrypted.key"
    _openssl(
        tmp_path,
        *("pkey", "-in", str(pki.server_key), "-aes256", "-passout", "pass:secret"),
        *("-out", str(encrypted)),
    )
    path = write_config(
        f"tls_server_config:\n  cert_file: {pki.server_crt}\n  key_file: {encrypted}\n"
    )

    with pytest.raises(WebConfigError, match=r"tls_server_config\.key_file: .* is encrypted"):
        load_web_config(path)


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"

    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)

    assert str(raised.value) == f"{path}: cannot read web config file: No such file or directory"


# Basic auth


def test_right_password_is_accepted_and_names_the_user() -> None:
    config = users_config()

    assert config.check_basic_auth(basic("alice", ALICE_PASSWORD)) == AuthResult(True, "alice")


def test_wrong_password_is_refused() -> None:
    assert users_config().check_basic_auth(basic("alice", BOB_PASSWORD)) == AuthResult(False)


def test_unknown_user_is_refused_after_a_comparison_at_the_highest_configured_cost(
    bcrypt_calls: list[bytes],
) -> None:
    result = users_config().check_basic_auth(basic("mallory", ALICE_PASSWORD))

    assert result == AuthResult(ok=False, user=None)
    assert len(bcrypt_calls) == 1
    assert bcrypt_calls[0].startswith(b"$2b$05$")  # bob's cost, the higher of the two
    assert bcrypt_calls[0] not in (ALICE_HASH.encode(), BOB_HASH.encode())


def test_htpasswd_style_2y_hashes_are_accepted() -> None:
    htpasswd_hash = "$2y$" + ALICE_HASH[4:]
    config = WebConfig(basic_auth_users={"alice": htpasswd_hash})

    assert config.check_basic_auth(basic("alice", ALICE_PASSWORD)).ok
    assert not config.check_basic_auth(basic("alice", "wrong")).ok


def test_scheme_name_is_case_insensitive() -> None:
    header = basic("alice", ALICE_PASSWORD).replace("Basic", "bAsIc")

    assert users_config().check_basic_auth(header).ok


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no header"),
        pytest.param("", id="empty"),
        pytest.param("Basic", id="scheme only"),
        pytest.param("Bearer abc.def", id="other scheme"),
        pytest.param("Basic !!!not-base64!!!", id="not base64"),
        pytest.param("Basic " + base64.b64encode(b"alice").decode(), id="no colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), id="user not UTF-8"),
        pytest.param("Basic ÄÖÜ", id="non-ASCII token"),
        pytest.param("Basic " + "A" * 10_000, id="oversized"),
    ],
)
def test_malformed_header_is_refused_without_an_exception(
    header: str | None, bcrypt_calls: list[bytes]
) -> None:
    assert users_config().check_basic_auth(header) == AuthResult(ok=False, user=None)
    assert bcrypt_calls == []


def test_password_longer_than_bcrypt_reads_is_checked_on_its_first_72_bytes() -> None:
    long_password = "p" * 72
    config = WebConfig(
        basic_auth_users={
            "alice": bcrypt.hashpw(long_password.encode(), bcrypt.gensalt(rounds=4)).decode()
        }
    )

    assert config.check_basic_auth(basic("alice", long_password + "ignored by bcrypt")).ok


def test_repeated_scrape_with_the_same_credentials_runs_bcrypt_once(
    bcrypt_calls: list[bytes],
) -> None:
    config = users_config()
    header = basic("alice", ALICE_PASSWORD)

    results = [config.check_basic_auth(header) for _ in range(5)]

    assert all(result.ok for result in results)
    assert len(bcrypt_calls) == 1


def test_wrong_passwords_are_never_cached(bcrypt_calls: list[bytes]) -> None:
    config = users_config()

    for _ in range(3):
        assert not config.check_basic_auth(basic("alice", "guess")).ok

    assert len(bcrypt_calls) == 3


def test_cached_success_does_not_let_a_different_password_in(bcrypt_calls: list[bytes]) -> None:
    config = users_config()
    assert config.check_basic_auth(basic("alice", ALICE_PASSWORD)).ok

    assert not config.check_basic_auth(basic("alice", ALICE_PASSWORD + "x")).ok
    assert len(bcrypt_calls) == 2


def test_cache_forgets_the_least_recently_used_credentials_when_full(
    monkeypatch: pytest.MonkeyPatch, bcrypt_calls: list[bytes]
) -> None:
    monkeypatch.setattr(webconfig, "AUTH_CACHE_SIZE", 1)
    config = users_config()
    alice, bob = basic("alice", ALICE_PASSWORD), basic("bob", BOB_PASSWORD)

    for header in (alice, alice, bob, bob, alice):
        assert config.check_basic_auth(header).ok

    # alice (miss), alice (hit), bob (miss, evicts alice), bob (hit), alice (miss again)
    assert len(bcrypt_calls) == 3


def test_concurrent_checks_all_succeed() -> None:
    config = users_config()
    header = basic("bob", BOB_PASSWORD)
    results: list[bool] = []

    threads = [
        threading.Thread(target=lambda: results.append(config.check_basic_auth(header).ok))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [True] * 8


# A real TLS server, wired the way the exporter's server is meant to use the module


class _Handler(BaseHTTPRequestHandler):
    server: _TLSServer

    def do_GET(self) -> None:
        config = self.server.web_config
        result = config.check_basic_auth(self.headers.get("Authorization"))
        status, body = (200, f"hello {result.user}\n") if result.ok else (401, "unauthorized\n")
        self.send_response(status)
        for name, value in config.headers.items():
            self.send_header(name, value)
        if not result.ok:
            self.send_header("WWW-Authenticate", 'Basic realm="metrics"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TLSServer(ThreadingHTTPServer):
    """Handshakes in the connection's own thread, so one slow client cannot stall accept()."""

    daemon_threads = True

    def __init__(self, web_config: WebConfig) -> None:
        self.web_config = web_config
        context = web_config.ssl_context()
        assert context is not None
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/"

    def finish_request(self, request: Any, client_address: Any) -> None:
        assert isinstance(request, socket.socket)
        request.settimeout(5)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # plain HTTP, an untrusted client certificate, a scanner: drop it
        with connection:
            super().finish_request(connection, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # TLS 1.3 reports a refused client certificate here, after the handshake


@pytest.fixture
def serve(pki: PKI, write_config) -> Iterator[Callable[[str], _TLSServer]]:
    servers: list[_TLSServer] = []

    def start(extra_tls: str = "", rest: str = "") -> _TLSServer:
        config = load_web_config(
            write_config(
                "tls_server_config:\n"
                f"  cert_file: {pki.server_crt}\n"
                f"  key_file: {pki.server_key}\n" + extra_tls + rest
            )
        )
        server = _TLSServer(config)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # no proxies or CA bundles from the environment
        yield http


def test_https_request_verified_against_the_ca_succeeds(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve("", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")

    response = session.get(server.url, verify=str(pki.ca_crt), timeout=5)

    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "deny"


def test_plain_http_to_the_tls_port_is_refused_and_the_server_keeps_serving(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve()

    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(server.url.replace("https://", "http://"), timeout=5)

    assert session.get(server.url, verify=str(pki.ca_crt), timeout=5).status_code == 200


def test_basic_auth_over_tls_needs_the_right_password(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve("", f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
    ca = str(pki.ca_crt)

    anonymous = session.get(server.url, verify=ca, timeout=5)
    wrong = session.get(server.url, verify=ca, timeout=5, auth=("alice", "wrong"))
    right = session.get(server.url, verify=ca, timeout=5, auth=("alice", ALICE_PASSWORD))

    assert (anonymous.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert right.text == "hello alice\n"


REQUIRE_CLIENT_CERT = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca}\n"


def test_required_client_certificate_signed_by_the_client_ca_is_let_in(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve(REQUIRE_CLIENT_CERT.format(ca=pki.ca_crt))

    response = session.get(
        server.url,
        verify=str(pki.ca_crt),
        cert=(str(pki.client_crt), str(pki.client_key)),
        timeout=5,
    )

    assert response.status_code == 200


def test_required_client_certificate_missing_is_refused(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve(REQUIRE_CLIENT_CERT.format(ca=pki.ca_crt))

    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(server.url, verify=str(pki.ca_crt), timeout=5)


def test_client_certificate_from_another_ca_is_refused(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve(REQUIRE_CLIENT_CERT.format(ca=pki.ca_crt))

    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(
            server.url,
            verify=str(pki.ca_crt),
            cert=(str(pki.stranger_crt), str(pki.stranger_key)),
            timeout=5,
        )


def test_optional_client_certificate_may_be_left_out(
    serve, session: requests.Session, pki: PKI
) -> None:
    server = serve(f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {pki.ca_crt}\n")

    assert session.get(server.url, verify=str(pki.ca_crt), timeout=5).status_code == 200


def test_client_below_min_version_cannot_connect(serve, pki: PKI) -> None:
    server = serve("  min_version: TLS13\n")
    client = ssl.create_default_context(cafile=str(pki.ca_crt))
    client.maximum_version = ssl.TLSVersion.TLSv1_2

    with (
        socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        client.wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_wrong_password_of_a_cheap_user_takes_as_long_as_an_unknown_user() -> None:
    """Users of different bcrypt costs: an unknown user was checked at the highest cost (about
    240 ms) and a wrong password of a cheaper user at its own (about 70 ms), so the fast answer
    said which users exist. Medians of a few tries; the bound is generous for a loaded host."""
    cheap_hash = bcrypt.hashpw(b"cheap secret", bcrypt.gensalt(rounds=4)).decode()
    dear_hash = bcrypt.hashpw(b"dear secret", bcrypt.gensalt(rounds=10)).decode()
    config = WebConfig(basic_auth_users={"cheap": cheap_hash, "dear": dear_hash})
    config.check_basic_auth(basic("nobody", "x"))  # the first one also makes the decoy hash

    def median_seconds(header: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            assert not config.check_basic_auth(header).ok
            times.append(time.perf_counter() - started)
        return sorted(times)[1]

    unknown = median_seconds(basic("nobody", "guess"))
    wrong_password = median_seconds(basic("cheap", "guess"))

    assert 0.4 <= wrong_password / unknown <= 2.5, (
        f"unknown user {unknown * 1000:.0f} ms, wrong password {wrong_password * 1000:.0f} ms"
    )
