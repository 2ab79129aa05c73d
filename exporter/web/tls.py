"""The TLS server context of ``tls_server_config``, built with Python's ``ssl`` module.

Problems name the key at fault (``TLSProblem``), so the web config reports them like any other.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    # Python cannot ask for a certificate without verifying it. Never checking it grants the same
    # access as not asking, so this maps to CERT_NONE (with a warning at load).
    "RequestClientCert": ssl.CERT_NONE,
    # Python cannot require a certificate without verifying it either: these verify against
    # client_ca_file, which is stricter than Go and so fails closed (also warned at load).
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireClientCert": ssl.CERT_REQUIRED,  # the toolkit's old name for RequireAnyClientCert
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class TLSSettings:
    """What ``tls_server_config`` asks for, in the terms Python's ``ssl`` module understands.

    File paths are already resolved against the config file's directory. Inline PEM (the
    toolkit's ``cert`` / ``key`` / ``client_ca`` keys) is kept out of ``repr``.
    """

    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    client_ca: str | None = field(default=None, repr=False)
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    prefer_server_cipher_suites: bool = True

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        """How the server treats client certificates (see ``VERIFY_MODES`` for the mapping)."""
        return VERIFY_MODES[self.client_auth_type]


class TLSProblem(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class _PemSource:
    """Where a PEM blob comes from, for loading it and for naming it in a message."""

    key_path: str
    file: str | None
    inline: str | None

    @property
    def shown(self) -> str:
        return self.file if self.file else "the inline PEM"


def build_context(tls: TLSSettings) -> ssl.SSLContext:
    """Build the server context, raising ``TLSProblem`` naming the key at fault."""
    base = "tls_server_config"
    cert = _PemSource(f"{base}.{'cert' if tls.cert else 'cert_file'}", tls.cert_file, tls.cert)
    key = _PemSource(f"{base}.{'key' if tls.key else 'key_file'}", tls.key_file, tls.key)
    # PROTOCOL_TLS_SERVER starts from Python's secure defaults and, unlike
    # create_default_context(), does not trust the system CAs for client certificates.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS10/11: warned about at load
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    with _pem_on_disk(cert) as cert_path, _pem_on_disk(key) as key_path:
        _check_certificate(cert, cert_path)
        _load_key_pair(context, cert, cert_path, key, key_path)
    if tls.client_ca_file or tls.client_ca:
        _load_client_ca(context, tls)
    context.verify_mode = tls.verify_mode
    return context


@contextmanager
def _pem_on_disk(source: _PemSource) -> Iterator[str]:
    """The PEM's file; inline PEM is written to a private temporary file for the load.

    ``load_cert_chain`` only reads files. The temporary file is readable by this user only and
    removed as soon as the context holds the key.
    """
    if source.file:
        try:
            Path(source.file).read_bytes()
        except OSError as error:
            raise TLSProblem(
                source.key_path, f"cannot read {source.file}: {error.strerror or error}"
            ) from None
        yield source.file
        return
    with tempfile.TemporaryDirectory(prefix="webconfig-") as directory:
        temporary = Path(directory) / "pem"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(source.inline or "")
        yield str(temporary)


def _check_certificate(cert: _PemSource, cert_path: str) -> None:
    """Tell a bad certificate from a bad key: ``load_cert_chain`` blames both as "PEM lib"."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=cert_path)
    except (ssl.SSLError, ValueError):
        raise TLSProblem(cert.key_path, f"{cert.shown} holds no PEM certificate") from None


def _load_key_pair(
    context: ssl.SSLContext, cert: _PemSource, cert_path: str, key: _PemSource, key_path: str
) -> None:
    asked_for_password = False

    def no_password() -> bytes:
        nonlocal asked_for_password
        asked_for_password = True
        return b""  # never prompt on the terminal: the toolkit has no key passwords either

    try:
        context.load_cert_chain(cert_path, key_path, password=no_password)
    except ssl.SSLError as error:
        if asked_for_password:
            message = (
                f"{key.shown} is encrypted; give an unencrypted key readable by the exporter only"
            )
        elif error.reason == "KEY_VALUES_MISMATCH":
            message = f"{key.shown} does not match the certificate in {cert.shown}"
        else:
            message = f"{key.shown} holds no usable PEM private key"
        raise TLSProblem(key.key_path, message) from None


def _load_client_ca(context: ssl.SSLContext, tls: TLSSettings) -> None:
    base = "tls_server_config"
    try:
        if tls.client_ca_file:
            context.load_verify_locations(cafile=tls.client_ca_file)
        else:
            context.load_verify_locations(cadata=tls.client_ca)
    except OSError as error:
        if tls.client_ca_file and not isinstance(error, ssl.SSLError):
            message = f"cannot read {tls.client_ca_file}: {error.strerror or error}"
            raise TLSProblem(f"{base}.client_ca_file", message) from None
        shown = tls.client_ca_file or "the inline PEM"
        path = f"{base}.{'client_ca_file' if tls.client_ca_file else 'client_ca'}"
        raise TLSProblem(path, f"{shown} holds no PEM certificate") from None
    except ValueError:
        raise TLSProblem(f"{base}.client_ca", "the inline PEM holds no certificate") from None
