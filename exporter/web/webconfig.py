"""Read the Prometheus exporter-toolkit web config file (``--web.config.file``).

Operators who run Go exporters already keep one YAML file for TLS and basic auth on /metrics, and
Prometheus scrape configs are written against it. Accepting the same format lets them reuse that
file as it is, instead of learning a second one::

    tls_server_config:
      cert_file: server.crt          # relative paths are read from this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        X-Content-Type-Options: nosniff
    basic_auth_users:
      prometheus: $2b$10$...         # bcrypt hash, e.g. from: htpasswd -nBC 10 "" | tr -d ':\\n'

Python's ``ssl`` module cannot honour every Go setting, so keys fall in three groups:

- honoured: cert / key (files or inline PEM), ``client_auth_type``, client CA (file or inline),
  ``min_version`` / ``max_version``, ``prefer_server_cipher_suites``, the response headers and
  ``basic_auth_users``;
- accepted with a warning, because ignoring them never lets in a client the file would refuse:
  ``cipher_suites``, ``curve_preferences`` (OpenSSL's defaults apply), ``http2`` (HTTP/1.1 is
  served) and ``rate_limit``;
- refused: ``client_allowed_sans`` (ignoring it would let in clients it is meant to keep out) and
  any key the toolkit does not know, with a did-you-mean.

Everything is checked when the file is loaded, including building the TLS context, so a mistake
stops the exporter at start-up with one line per problem rather than at the first scrape.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..config.reader import (
    Checker,
    ConfigFileError,
    ConfigProblem,
    parse_yaml,
    read_text,
    readable_by_others,
    suggest,
    type_name,
)
from .basicauth import AUTH_CACHE_SIZE, BCRYPT_HASH, BasicAuthChecker, parse_basic_credentials
from .tls import TLS_VERSIONS, VERIFY_MODES, TLSProblem, TLSSettings, build_context

__all__ = ["AuthResult", "TLSSettings", "WebConfig", "WebConfigError", "load_web_config"]

_TOP_LEVEL_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_KEYS = ("http2", "headers")
# The toolkit lets only these response headers be set, and pins the values of two of them, so
# that every Prometheus component behaves alike; None means any value.
_ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}


class WebConfigError(ConfigFileError):
    """The web config cannot be used; ``str()`` gives one line per problem.

    Each line reads ``<file>:<line>: <key path>: <message>``. Messages never quote a password,
    a password hash or an inline private key, so the error can be logged as it is.
    """


@dataclass(frozen=True)
class AuthResult:
    """The answer to one ``Authorization`` header.

    ``user`` is the accepted user name, and None when the check failed (the name a client sent
    is not echoed back, since a mistyped password sometimes lands in the user field).
    """

    ok: bool
    user: str | None = None


@dataclass(frozen=True)
class WebConfig:
    """TLS, basic auth and response headers for the exporter's HTTP server.

    Load it with :func:`load_web_config`; an all-default instance means plain HTTP, no auth.
    """

    tls: TLSSettings | None = None
    basic_auth_users: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()
    source: str = "<memory>"
    _auth: BasicAuthChecker = field(
        default_factory=lambda: BasicAuthChecker(AUTH_CACHE_SIZE),
        init=False,
        repr=False,
        compare=False,
    )

    def __post_init__(self) -> None:
        # Frozen all the way down: a caller's dict changed later must not change who gets in.
        for name in ("basic_auth_users", "headers"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry basic auth; an empty ``basic_auth_users`` means no."""
        return bool(self.basic_auth_users)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side context for wrapping accepted connections; None without TLS.

        The same context is returned on every call: it is built once (at load, which is how
        load problems surface) and is safe to share between connections and threads. A
        ``WebConfig`` built by hand raises :class:`WebConfigError` here if its files are unusable.
        """
        if self.tls is None:
            return None
        return self._context

    @cached_property
    def _context(self) -> ssl.SSLContext:
        assert self.tls is not None
        try:
            return build_context(self.tls)
        except TLSProblem as problem:
            raise WebConfigError(
                self.source, [ConfigProblem(problem.path, problem.message)]
            ) from None

    def check_basic_auth(self, authorization_header: str | None) -> AuthResult:
        """Check an ``Authorization`` header against ``basic_auth_users``.

        Never raises: a missing or malformed header is simply not ok. Without configured users
        every request is ok. See ``BasicAuthChecker`` for the cache and timing decisions.
        """
        if not self.basic_auth_users:
            return AuthResult(ok=True)
        credentials = parse_basic_credentials(authorization_header)
        if credentials is None:
            return AuthResult(ok=False)
        user, password = credentials
        if self._auth.check(user, password, self.basic_auth_users):
            return AuthResult(ok=True, user=user)
        return AuthResult(ok=False)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate the web config at ``path``; raise :class:`WebConfigError` if unusable.

    Relative ``cert_file`` / ``key_file`` / ``client_ca_file`` paths are read from the config
    file's directory, as the exporter-toolkit does, so a directory holding the file and its
    certificates can be moved as a whole.
    """
    source = str(path)
    text = read_text(path, "web config file", WebConfigError)
    document, lines = parse_yaml(text, source, WebConfigError)
    reader = _Reader(source, lines, Path(os.path.abspath(path)).parent)
    config = reader.web_config(document)
    if reader.problems:
        raise WebConfigError(source, reader.problems)
    assert config is not None
    try:
        config.ssl_context()  # builds the context now, so broken certificates stop the start-up
    except WebConfigError as error:
        located = [
            replace(problem, line=reader.line_of(problem.path)) for problem in error.problems
        ]
        raise WebConfigError(source, located) from None
    return config


class _Reader(Checker):
    """Collects problems and warnings while turning the parsed document into a ``WebConfig``."""

    def __init__(self, source: str, lines: dict[str, int], base_dir: Path) -> None:
        super().__init__(source, lines)
        self.base_dir = base_dir

    def web_config(self, document: Any) -> WebConfig | None:
        if document is None:
            self.warn("", "the file is empty: serving plain HTTP without authentication")
            return WebConfig(warnings=tuple(self.warnings), source=self.source)
        section = self.mapping(document, "")
        if section is None:
            return None
        self.unknown_keys(section, _TOP_LEVEL_KEYS, "", list_known=True)
        tls = self.tls(section.get("tls_server_config"))
        headers = self.http(section.get("http_server_config"))
        users = self.users(section.get("basic_auth_users"))
        if section.get("rate_limit") is not None:
            self.warn("rate_limit", "not supported, ignored: requests are not rate limited")
        if users and tls is None:
            self.warn(
                "basic_auth_users",
                "basic auth without tls_server_config sends passwords in clear text",
            )
        return WebConfig(
            tls=tls,
            basic_auth_users=users,
            headers=headers,
            warnings=tuple(self.warnings),
            source=self.source,
        )

    def string(self, section: dict[Any, Any], key: str, path: str) -> str:
        """The key's string value, or "" when absent, null or wrong (the toolkit's "unset")."""
        value = section.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(f"{path}.{key}", f"expected a string, got {type_name(value)}")
            return ""
        return value

    def string_list(self, section: dict[Any, Any], key: str, path: str) -> list[str]:
        value = section.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(f"{path}.{key}", f"expected a list of strings, got {type_name(value)}")
            return []
        return value

    def file_path(self, section: dict[Any, Any], key: str, path: str) -> str | None:
        value = self.string(section, key, path)
        if not value:
            return None
        return str(self.base_dir / value)

    def tls(self, value: Any) -> TLSSettings | None:
        path = "tls_server_config"
        if value is None:
            return None
        section = self.mapping(value, path)
        if not section:
            return None
        problems_before = len(self.problems)
        self.unknown_keys(section, _TLS_KEYS, path, list_known=True)
        cert_file = self.file_path(section, "cert_file", path)
        key_file = self.file_path(section, "key_file", path)
        if key_file and readable_by_others(key_file):
            self.warn(f"{path}.key_file", f"{key_file} is readable by other users; chmod o-r it")
        client_ca_file = self.file_path(section, "client_ca_file", path)
        cert = self.string(section, "cert", path)
        key = self.string(section, "key", path)  # a message never quotes it: see string()
        client_ca = self.string(section, "client_ca", path)
        for inline, from_file, name in (
            (cert, cert_file, "cert"),
            (key, key_file, "key"),
            (client_ca, client_ca_file, "client_ca"),
        ):
            if inline and from_file:
                self.fail(f"{path}.{name}_file", f"give either {name} or {name}_file, not both")
        # The toolkit serves plain HTTP when this section has no certificate; here a section
        # that asks for anything TLS without one is refused, since the user meant TLS.
        if not cert and not cert_file:
            self.fail(f"{path}.cert_file", "missing: TLS needs cert_file (or an inline cert)")
        if not key and not key_file:
            self.fail(f"{path}.key_file", "missing: TLS needs key_file (or an inline key)")
        client_auth_type = self.client_auth_type(section, path, bool(client_ca or client_ca_file))
        min_version = self.tls_version(section, "min_version", path, "TLS12")
        max_version = self.tls_version(section, "max_version", path, "TLS13")
        if min_version > max_version:
            self.fail(f"{path}.max_version", "is lower than min_version")
        if min_version < ssl.TLSVersion.TLSv1_2:
            self.warn(
                f"{path}.min_version",
                "TLS 1.0 and 1.1 are deprecated; this OpenSSL may refuse them anyway",
            )
        prefer_server = self.boolean(section, "prefer_server_cipher_suites", True, path)
        for ignored, what in (("cipher_suites", "cipher suites"), ("curve_preferences", "curves")):
            if self.string_list(section, ignored, path):
                self.warn(
                    f"{path}.{ignored}",
                    f"Python's ssl module cannot set them, ignored: OpenSSL's default {what} apply",
                )
        if section.get("client_allowed_sans") is not None:
            self.fail(
                f"{path}.client_allowed_sans",
                "not supported here: Python's ssl module cannot match client certificate SANs "
                "during the handshake, and ignoring the list would let in clients it refuses; "
                "give those clients certificates from a dedicated client_ca_file instead",
            )
        if len(self.problems) > problems_before:
            return None
        return TLSSettings(
            cert_file=cert_file,
            key_file=key_file,
            cert=cert or None,
            key=key or None,
            client_auth_type=client_auth_type,
            client_ca_file=client_ca_file,
            client_ca=client_ca or None,
            min_version=min_version,
            max_version=max_version,
            prefer_server_cipher_suites=prefer_server,
        )

    def client_auth_type(self, section: dict[Any, Any], path: str, has_ca: bool) -> str:
        key_path = f"{path}.client_auth_type"
        value = self.string(section, "client_auth_type", path) or "NoClientCert"
        if value not in VERIFY_MODES:
            choices = [name for name in VERIFY_MODES if name != "RequireClientCert"]
            hint = suggest(value, choices) or f"; use one of {', '.join(choices)}"
            self.fail(key_path, f"unknown client auth type {value!r}{hint}")
            return "NoClientCert"
        if value == "NoClientCert" and has_ca:
            self.fail(
                key_path, "a client CA is given but NoClientCert never asks for a client cert"
            )
        elif value == "RequestClientCert":
            self.warn(
                key_path,
                "Python cannot request a client certificate without verifying it; none is "
                "requested, which grants the same access (anyone may connect)",
            )
        elif VERIFY_MODES[value] != ssl.CERT_NONE and not has_ca:
            self.fail(
                f"{path}.client_ca_file",
                f"missing: client_auth_type {value} verifies client certificates against it",
            )
        elif value in ("RequireAnyClientCert", "RequireClientCert"):
            self.warn(
                key_path,
                "Python cannot require a client certificate without verifying it; client "
                "certificates are verified against the client CA (stricter than Go)",
            )
        return value

    def tls_version(
        self, section: dict[Any, Any], key: str, path: str, default: str
    ) -> ssl.TLSVersion:
        value = section.get(key)
        name = default if value is None else str(value)
        if name not in TLS_VERSIONS:
            hint = suggest(name, TLS_VERSIONS) or f"; use one of {', '.join(TLS_VERSIONS)}"
            self.fail(f"{path}.{key}", f"unknown TLS version {name!r}{hint}")
            return TLS_VERSIONS[default]
        return TLS_VERSIONS[name]

    def http(self, value: Any) -> dict[str, str]:
        path = "http_server_config"
        if value is None:
            return {}
        section = self.mapping(value, path)
        if section is None:
            return {}
        self.unknown_keys(section, _HTTP_KEYS, path, list_known=True)
        if self.boolean(section, "http2", False, path):
            self.warn(f"{path}.http2", "HTTP/2 is not supported, ignored: HTTP/1.1 is served")
        raw_headers = section.get("headers")
        if raw_headers is None:
            return {}
        headers_path = f"{path}.headers"
        headers_section = self.mapping(raw_headers, headers_path)
        if headers_section is None:
            return {}
        headers: dict[str, str] = {}
        for name in headers_section:
            key_path = f"{headers_path}.{name}"
            if name not in _ALLOWED_HEADERS:
                hint = suggest(str(name), _ALLOWED_HEADERS)
                allowed_names = ", ".join(_ALLOWED_HEADERS)
                self.fail(
                    key_path, f"this header cannot be configured{hint}; allowed: {allowed_names}"
                )
                continue
            text = self.string(headers_section, name, headers_path)
            if not text:
                continue  # the toolkit's "unset if blank"
            allowed = _ALLOWED_HEADERS[name]
            if allowed is not None and text not in allowed:
                self.fail(key_path, f"expected one of {', '.join(allowed)}, got {text!r}")
            elif "\r" in text or "\n" in text:
                self.fail(key_path, "must be one line (no CR or LF)")
            elif not (text.isascii() and text.isprintable()):
                # http.server encodes headers as Latin-1 and would fail every answer otherwise
                self.fail(key_path, "must be printable ASCII")
            else:
                headers[name] = text
        return headers

    def users(self, value: Any) -> dict[str, str]:
        path = "basic_auth_users"
        if value is None:
            return {}
        section = self.mapping(value, path)
        if section is None:
            return {}
        users: dict[str, str] = {}
        for raw_name, hashed in section.items():
            name = str(raw_name)
            key_path = f"{path}.{name}"
            if isinstance(raw_name, (dict, list)):
                self.fail(key_path, "a user name must be a plain string")
                continue
            # The message must never quote the value: it is a password hash, or a password
            # pasted by mistake.
            if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
                self.fail(
                    key_path,
                    "is not a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost and 53 "
                    "characters); make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
                )
                continue
            cost = int(hashed[4:6])
            if not 4 <= cost <= 31:
                self.fail(key_path, f"bcrypt cost {cost} is outside 4..31")
                continue
            if ":" in name:
                self.warn(key_path, "a user name with ':' can never log in with basic auth")
            users[name] = hashed
        return users
