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

import base64
import binascii
import difflib
import hashlib
import os
import re
import ssl
import stat
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bcrypt
import yaml

AUTH_CACHE_SIZE = 128
"""How many accepted (user, password, hash) digests are remembered; a few scrapers need a few."""

_BCRYPT_PASSWORD_LIMIT = 72
_MAX_AUTHORIZATION_LENGTH = 4096
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")

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
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY_MODES = {
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
# The toolkit lets only these response headers be set, and pins the values of two of them, so
# that every Prometheus component behaves alike; None means any value.
_ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}


class WebConfigError(Exception):
    """The web config cannot be used; ``str()`` gives one line per problem.

    Each line reads ``<file>: <key path>: <message>``. Messages never quote a password, a
    password hash or an inline private key, so the error can be logged as it is.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(_render(source, path, message) for path, message in problems))


@dataclass(frozen=True)
class AuthResult:
    """The answer to one ``Authorization`` header.

    ``user`` is the accepted user name, and None when the check failed (the name a client sent
    is not echoed back, since a mistyped password sometimes lands in the user field).
    """

    ok: bool
    user: str | None = None


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
        """How the server treats client certificates (see ``_VERIFY_MODES`` for the mapping)."""
        return _VERIFY_MODES[self.client_auth_type]


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
    _auth: _BasicAuthChecker = field(
        default_factory=lambda: _BasicAuthChecker(AUTH_CACHE_SIZE),
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
            return _build_context(self.tls)
        except _TLSProblem as problem:
            raise WebConfigError(self.source, [(problem.path, problem.message)]) from None

    def check_basic_auth(self, authorization_header: str | None) -> AuthResult:
        """Check an ``Authorization`` header against ``basic_auth_users``.

        Never raises: a missing or malformed header is simply not ok. Without configured users
        every request is ok. See ``_BasicAuthChecker`` for the cache and timing decisions.
        """
        if not self.basic_auth_users:
            return AuthResult(ok=True)
        credentials = _parse_basic_credentials(authorization_header)
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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8"
        raise WebConfigError(source, [("", f"cannot read web config file: {reason}")]) from None
    reader = _Reader(source, Path(os.path.abspath(path)).parent)
    config = reader.web_config(_parse_yaml(text, source))
    if reader.problems:
        raise WebConfigError(source, reader.problems)
    assert config is not None
    config.ssl_context()  # builds the context now, so broken certificates stop the start-up
    return config


def _render(source: str, path: str, message: str) -> str:
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[matches[0]]}?)" if matches else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _parse_yaml(text: str, source: str) -> Any:
    """Parse YAML, refusing duplicate keys (PyYAML would keep the last one silently)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = list(_duplicate_keys(node, ""))
        if duplicates:
            raise WebConfigError(source, duplicates)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        # Only the problem and the line: the snippet PyYAML quotes could hold a secret.
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        problem = error.problem or error.context or "not valid YAML"
        raise WebConfigError(source, [("", f"invalid YAML: {problem}{where}")]) from None
    except yaml.YAMLError:
        raise WebConfigError(source, [("", "invalid YAML")]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in seen:
                yield child, "duplicate key (only one may be given)"
            seen.add(key)
            yield from _duplicate_keys(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{index}]")


class _Reader:
    """Collects problems and warnings while turning the parsed document into a ``WebConfig``."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(_render(self.source, path, message))

    def web_config(self, document: Any) -> WebConfig | None:
        if document is None:
            self.warn("", "the file is empty: serving plain HTTP without authentication")
            return WebConfig(warnings=tuple(self.warnings), source=self.source)
        section = self.mapping(document, "")
        if section is None:
            return None
        self.refuse_unknown(section, _TOP_LEVEL_KEYS, "")
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

    def mapping(self, value: Any, path: str) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            subject = "must be" if path else "the file must be"
            self.fail(path, f"{subject} a mapping of keys, not {_type_name(value)}")
            return None
        return value

    def refuse_unknown(self, section: dict[Any, Any], known: tuple[str, ...], path: str) -> None:
        for key in section:
            if key not in known:
                child = f"{path}.{key}" if path else str(key)
                hint = _did_you_mean(str(key), known) or f"; known keys: {', '.join(known)}"
                self.fail(child, f"unknown key{hint}")

    def string(self, section: dict[Any, Any], key: str, path: str, secret: bool = False) -> str:
        """The key's string value, or "" when absent, null or wrong (the toolkit's "unset")."""
        value = section.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            shown = "" if secret else f" ({value!r})"
            self.fail(f"{path}.{key}", f"expected a string, got {_type_name(value)}{shown}")
            return ""
        return value

    def boolean(self, section: dict[Any, Any], key: str, path: str, default: bool) -> bool:
        value = section.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(f"{path}.{key}", f"expected true or false, got {value!r}")
            return default
        return value

    def string_list(self, section: dict[Any, Any], key: str, path: str) -> list[str]:
        value = section.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(f"{path}.{key}", f"expected a list of strings, got {_type_name(value)}")
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
        self.refuse_unknown(section, _TLS_KEYS, path)
        cert_file = self.file_path(section, "cert_file", path)
        key_file = self.file_path(section, "key_file", path)
        if key_file and _key_is_world_readable(key_file):
            self.warn(f"{path}.key_file", f"{key_file} is readable by other users; chmod o-r it")
        client_ca_file = self.file_path(section, "client_ca_file", path)
        cert = self.string(section, "cert", path)
        key = self.string(section, "key", path, secret=True)
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
        prefer_server = self.boolean(section, "prefer_server_cipher_suites", path, True)
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
        if value not in _VERIFY_MODES:
            choices = [name for name in _VERIFY_MODES if name != "RequireClientCert"]
            hint = _did_you_mean(value, choices) or f"; use one of {', '.join(choices)}"
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
        elif _VERIFY_MODES[value] != ssl.CERT_NONE and not has_ca:
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
        if name not in _TLS_VERSIONS:
            hint = _did_you_mean(name, _TLS_VERSIONS) or f"; use one of {', '.join(_TLS_VERSIONS)}"
            self.fail(f"{path}.{key}", f"unknown TLS version {name!r}{hint}")
            return _TLS_VERSIONS[default]
        return _TLS_VERSIONS[name]

    def http(self, value: Any) -> dict[str, str]:
        path = "http_server_config"
        if value is None:
            return {}
        section = self.mapping(value, path)
        if section is None:
            return {}
        self.refuse_unknown(section, _HTTP_KEYS, path)
        if self.boolean(section, "http2", path, False):
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
                hint = _did_you_mean(str(name), _ALLOWED_HEADERS)
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
            if not isinstance(hashed, str) or not _BCRYPT_HASH.match(hashed):
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


class _TLSProblem(Exception):
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


def _build_context(tls: TLSSettings) -> ssl.SSLContext:
    """Build the server context, raising ``_TLSProblem`` naming the key at fault."""
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
            raise _TLSProblem(
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
        raise _TLSProblem(cert.key_path, f"{cert.shown} holds no PEM certificate") from None


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
        raise _TLSProblem(key.key_path, message) from None


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
            raise _TLSProblem(f"{base}.client_ca_file", message) from None
        shown = tls.client_ca_file or "the inline PEM"
        path = f"{base}.{'client_ca_file' if tls.client_ca_file else 'client_ca'}"
        raise _TLSProblem(path, f"{shown} holds no PEM certificate") from None
    except ValueError:
        raise _TLSProblem(f"{base}.client_ca", "the inline PEM holds no certificate") from None


def _key_is_world_readable(path: str) -> bool:
    try:
        return bool(Path(path).stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def _parse_basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """``Basic base64(user:password)`` as (user, password bytes); None for anything else.

    The password stays bytes: bcrypt compares bytes, and decoding could only lose a match.
    """
    if not header or len(header) > _MAX_AUTHORIZATION_LENGTH:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class _BasicAuthChecker:
    """bcrypt checks with a small cache of successes and a decoy for unknown users.

    bcrypt costs ~50-100 ms at cost 10 by design, and Prometheus sends the same credentials on
    every scrape, so each accepted (user, password, hash) is remembered as a SHA-256 digest in a
    bounded LRU; the next scrape is a dictionary look-up. Only successes are cached, so a wrong
    password always pays the full bcrypt cost. Looking up a digest is not a timing leak: nobody
    without the password can produce a digest that shares a prefix with a cached one.

    A name that is not configured is still checked, against a decoy hash at the highest cost in
    use, so that the answer takes as long and does not reveal which users exist. bcrypt's own
    comparison is constant-time. Checks run one at a time, as in the exporter-toolkit: a burst of
    bad logins then costs one core, and cached scrapes never wait for that lock.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._accepted: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._decoys: dict[int, bytes] = {}

    def check(self, user: str, password: bytes, users: Mapping[str, str]) -> bool:
        # bcrypt reads only the first 72 bytes; htpasswd and Go hashed long passwords that way.
        password = password[:_BCRYPT_PASSWORD_LIMIT]
        hashed = users.get(user)
        if hashed is None:
            self._bcrypt(password, self._decoy(_highest_cost(users.values())))
            return False
        digest = _credential_digest(user, password, hashed)
        with self._cache_lock:
            if digest in self._accepted:
                self._accepted.move_to_end(digest)
                return True
        if not self._bcrypt(password, hashed.encode("ascii")):
            return False
        with self._cache_lock:
            self._accepted[digest] = None
            while len(self._accepted) > self._capacity:
                self._accepted.popitem(last=False)
        return True

    def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        with self._bcrypt_lock:
            try:
                return bcrypt.checkpw(password, hashed)
            except ValueError:  # a hash that was never validated (WebConfig built by hand)
                return False

    def _decoy(self, cost: int) -> bytes:
        with self._bcrypt_lock:
            if cost not in self._decoys:
                self._decoys[cost] = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=cost))
            return self._decoys[cost]


def _highest_cost(hashes: Iterable[str]) -> int:
    costs = [int(hashed[4:6]) for hashed in hashes if _BCRYPT_HASH.match(hashed)]
    return max(costs, default=10)


def _credential_digest(user: str, password: bytes, hashed: str) -> bytes:
    digest = hashlib.sha256()
    for part in (user.encode("utf-8"), password, hashed.encode("ascii")):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(part)
    return digest.digest()
