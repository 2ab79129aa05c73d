"""The connections ``transport.new_session`` makes itself (issue 20: resolved and connected inside
the deadline) keep what the library's own did: HTTPS verified against the configured CA, HTTP
proxies from the environment, and the Bearer token."""

from __future__ import annotations

import ssl

import pytest

from exporter.client import ApiError, MilvusClient
from exporter.transport import new_session

from . import hostile
from .conftest import TOKEN_A
from .test_webconfig import PKI, pki  # noqa: F401  (session fixture: a CA and a server cert)


def client(url: str, **options: object) -> MilvusClient:
    return MilvusClient(url, TOKEN_A, new_session(2), 3.0, **options)  # type: ignore[arg-type]


@pytest.fixture
def tls_context(pki: PKI) -> ssl.SSLContext:  # noqa: F811
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_crt, pki.server_key)
    return context


def test_an_https_upstream_is_verified_against_the_configured_ca(pki, tls_context):  # noqa: F811
    with hostile.hostile_server({}, tls=tls_context) as server:
        listing = client(server.url, verify=str(pki.ca_crt)).list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN_A}"


def test_an_https_upstream_with_an_unknown_ca_is_refused_as_tls(tls_context):
    with hostile.hostile_server({}, tls=tls_context) as server:
        with pytest.raises(ApiError) as raised:
            client(server.url, verify=True).list_refresh_jobs("default")
        assert raised.value.reason == "tls"


def test_an_http_proxy_from_the_environment_is_used_and_the_upstream_name_is_its_to_resolve(
    monkeypatch,
):
    """The endpoint's name does not resolve here: only the proxy (the hostile server) sees it."""
    with hostile.hostile_server({}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        listing = client("http://upstream.invalid:19530").list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        (exchange,) = proxy.seen
        assert exchange.path == (
            "http://upstream.invalid:19530/v2/vectordb/jobs/external_collection/list"
        )
        assert exchange.headers["authorization"] == f"Bearer {TOKEN_A}"
