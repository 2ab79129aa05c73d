"""The YAML config: defaults, ``${VAR}`` expansion, secrets, and one message per problem."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from exporter.config.loader import (
    CLUSTER_KEYS,
    TOP_LEVEL_KEYS,
    ClusterConfig,
    Config,
    ConfigError,
    load_config,
    parse_config,
)

TOKEN = "sk-live-Zq8wX3pL9vT2"


def parse(text: str, environ: Mapping[str, str] | None = None) -> Config:
    return parse_config(textwrap.dedent(text), "config.yaml", environ or {})


def problems(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The lines a user reads when the config is refused."""
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    return str(caught.value).splitlines()


def one_cluster(**keys: str) -> str:
    """A config with one cluster; ``keys`` are extra cluster lines, already YAML."""
    lines = ["clusters:", "  - name: prod", '    endpoint: "https://in01.example.com:19530"']
    lines += [f"    {key}: {value}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


MINIMAL = f"""\
clusters:
  - name: prod
    endpoint: https://in01-abc.aws-us-west-2.vectordb.zillizcloud.com:19530/
    token: {TOKEN}
"""


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL)

    config = load_config(path, environ={})

    (cluster,) = config.clusters
    assert cluster.name == "prod"
    assert cluster.endpoint == "https://in01-abc.aws-us-west-2.vectordb.zillizcloud.com:19530"
    assert cluster.token == TOKEN
    assert cluster.databases == ("default",)
    assert cluster.jobs == ("refresh", "import")
    assert cluster.tls_ca_file is None
    assert cluster.tls_insecure_skip_verify is False
    assert config.listen_address == "0.0.0.0:9969"
    assert config.poll_interval == 30.0
    assert config.request_timeout == 10.0
    assert config.requests_per_second == 20.0
    assert config.source == str(path)


def test_every_setting_can_be_given() -> None:
    config = parse(
        f"""\
        listen_address: "127.0.0.1:9100"
        poll_interval: 1m30s
        request_timeout: 500ms
        requests_per_second: 5
        max_tracked_jobs: 1000
        max_concurrent_requests: 4
        max_retries: 0
        max_response_bytes: 2048
        clusters:
          - name: self-hosted
            endpoint: http://milvus:19530
            databases: [default, analytics]
            jobs: [import]
            tls_insecure_skip_verify: true
          - name: cloud
            endpoint: https://in01.example.com
            token: {TOKEN}
            databases: analytics
        """
    )

    assert config.listen_address == "127.0.0.1:9100"
    assert (config.poll_interval, config.request_timeout) == (90.0, 0.5)
    assert config.requests_per_second == 5.0
    assert (config.max_tracked_jobs, config.max_concurrent_requests) == (1000, 4)
    assert (config.max_retries, config.max_response_bytes) == (0, 2048)
    self_hosted, cloud = config.clusters
    assert self_hosted.token == ""
    assert self_hosted.databases == ("default", "analytics")
    assert self_hosted.jobs == ("import",)
    assert self_hosted.tls_insecure_skip_verify is True
    assert cloud.databases == ("analytics",)


def test_token_reference_is_expanded_from_the_environment() -> None:
    config = parse(one_cluster(token="${MILVUS_TOKEN}"), {"MILVUS_TOKEN": TOKEN})

    assert config.clusters[0].token == TOKEN


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, ("analytics",), id="unset-uses-default"),
        pytest.param({"MILVUS_DB": "sales"}, ("sales",), id="set-wins-over-default"),
    ],
)
def test_reference_default_is_used_only_when_the_variable_is_unset(
    environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    config = parse(one_cluster(databases='["${MILVUS_DB:-analytics}"]'), environ)

    assert config.clusters[0].databases == expected


def test_references_expand_inside_longer_text_and_double_dollar_is_a_dollar() -> None:
    config = parse(
        one_cluster(token='"${MILVUS_USER}:pa$$word"').replace(
            "https://in01.example.com:19530", "https://${MILVUS_HOST}:19530"
        ),
        {"MILVUS_USER": "root", "MILVUS_HOST": "milvus.internal"},
    )

    assert config.clusters[0].token == "root:pa$word"
    assert config.clusters[0].endpoint == "https://milvus.internal:19530"


def test_unset_variable_names_the_variable_and_key_path_but_no_value() -> None:
    lines = problems(one_cluster(token='"root:${MILVUS_PASSWORD}"'), {"OTHER": TOKEN})

    assert lines == [
        "config.yaml:4: clusters[0].token: environment variable MILVUS_PASSWORD is not set"
    ]


def test_unset_variable_in_a_required_key_is_reported_once() -> None:
    lines = problems(
        """\
        clusters:
          - name: prod
            endpoint: "${MILVUS_URI}"
            token: "${MILVUS_TOKEN}"
        """,
        {"MILVUS_TOKEN": TOKEN},
    )

    assert lines == [
        "config.yaml:3: clusters[0].endpoint: environment variable MILVUS_URI is not set"
    ]


def test_token_file_is_read_and_trimmed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n\n")

    config = parse(one_cluster(token_file=str(token_file)))

    assert config.clusters[0].token == TOKEN
    assert config.clusters[0].token_file == str(token_file)


def test_token_file_path_may_come_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)

    config = parse(one_cluster(token_file="${SECRETS}/token"), {"SECRETS": str(tmp_path)})

    assert config.clusters[0].token == TOKEN


def test_unreadable_token_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"

    lines = problems(one_cluster(token_file=str(missing)))

    assert len(lines) == 1
    assert lines[0].startswith(
        f"config.yaml:4: clusters[0].token_file: cannot read token file {missing}"
    )


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(" \n")

    lines = problems(one_cluster(token_file=str(token_file)))

    assert lines == [f"config.yaml:4: clusters[0].token_file: token file {token_file} is empty"]


def test_token_and_token_file_together_are_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    lines = problems(one_cluster(token=TOKEN, token_file=str(token_file)))

    assert lines == [
        "config.yaml:5: clusters[0].token_file: give either token or token_file, not both"
    ]


def test_blank_inline_token_is_refused() -> None:
    lines = problems(one_cluster(token='"  "'))

    assert len(lines) == 1
    assert lines[0].startswith("config.yaml:4: clusters[0].token: is empty")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MINIMAL + "poll_intervall: 30s\n",
            "config.yaml:5: poll_intervall: unknown key (did you mean 'poll_interval'?)",
            id="top-level",
        ),
        pytest.param(
            MINIMAL + "    databse: [default]\n",
            "config.yaml:5: clusters[0].databse: unknown key (did you mean 'databases'?)",
            id="in-a-cluster",
        ),
        pytest.param(
            MINIMAL + "    tls_insecure_skip_verfy: true\n",
            "config.yaml:5: clusters[0].tls_insecure_skip_verfy: unknown key (did you mean 'tls_insecure_skip_verify'?)",
            id="long-name",
        ),
        pytest.param(
            MINIMAL + "colour: blue\n",
            "config.yaml:5: colour: unknown key",
            id="nothing-close",
        ),
    ],
)
def test_unknown_key_suggests_the_closest_name(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_misspelt_required_key_is_both_unknown_and_missing() -> None:
    lines = problems(
        """\
        clusters:
          - name: prod
            endpont: https://in01.example.com
        """
    )

    assert lines == [
        "config.yaml:3: clusters[0].endpont: unknown key (did you mean 'endpoint'?)",
        "config.yaml:2: clusters[0].endpoint: missing",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "requests_per_second: fast",
            "requests_per_second: expected a number, got a string",
            id="number-as-text",
        ),
        pytest.param(
            "requests_per_second: 0", "requests_per_second: must be at least 0.01", id="zero-rate"
        ),
        pytest.param(
            "requests_per_second: .nan",
            "requests_per_second: must be a finite number",
            id="nan-rate",
        ),
        pytest.param(
            "requests_per_second: .inf",
            "requests_per_second: must be a finite number",
            id="inf-rate",
        ),
        pytest.param(
            "max_retries: 1.5", "max_retries: expected a whole number, got a number", id="fraction"
        ),
        pytest.param(
            "max_retries: true", "max_retries: expected a whole number, got a boolean", id="boolean"
        ),
        pytest.param(
            "max_concurrent_requests: 0",
            "max_concurrent_requests: must be at least 1, got 0",
            id="no-concurrency",
        ),
        pytest.param(
            "max_response_bytes: 10", "max_response_bytes: must be at least 1024", id="tiny-body"
        ),
        pytest.param(
            "listen_address: 9969", "listen_address: expected HOST:PORT", id="port-without-colon"
        ),
        pytest.param(
            'listen_address: "0.0.0.0:99999"',
            "listen_address: expected HOST:PORT",
            id="port-too-big",
        ),
        pytest.param(
            "listen_address: [a, b]", "listen_address: expected a string, got a list", id="list"
        ),
    ],
)
def test_mistyped_top_level_value_is_reported_with_its_line(line: str, expected: str) -> None:
    lines = problems(line + "\n" + MINIMAL)

    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:1: {expected}")


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param(
            {"databases": "[]"},
            "clusters[0].databases: expected a non-empty list of names",
            id="no-databases",
        ),
        pytest.param(
            {"databases": "{main: 1}"},
            "clusters[0].databases: expected a non-empty list of names, got a mapping",
            id="databases-mapping",
        ),
        pytest.param(
            {"databases": "[default, default]"},
            "clusters[0].databases[1]: 'default' is listed twice",
            id="database-twice",
        ),
        pytest.param(
            {"jobs": "[refresh, imports]"},
            "clusters[0].jobs[1]: unknown job kind 'imports' (did you mean 'import'?)",
            id="job-kind",
        ),
        pytest.param(
            {"tls_insecure_skip_verify": "maybe"},
            "clusters[0].tls_insecure_skip_verify: expected true or false, got 'maybe'",
            id="not-a-boolean",
        ),
        pytest.param(
            {"tls_ca_file": "/no/such/ca.pem"},
            "clusters[0].tls_ca_file: cannot read CA file /no/such/ca.pem",
            id="missing-ca-file",
        ),
        pytest.param(
            {"token": "[a, b]"}, "clusters[0].token: expected a string, got a list", id="token-list"
        ),
    ],
)
def test_mistyped_cluster_value_is_reported_with_its_key_path(
    keys: dict[str, str], expected: str
) -> None:
    lines = problems(one_cluster(**keys))

    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:4: {expected}")


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("in01.example.com:19530", id="no-scheme"),
        pytest.param("ftp://in01.example.com", id="other-scheme"),
        pytest.param("https://", id="no-host"),
        pytest.param("HTTP//in01.example.com", id="missing-colon"),
        pytest.param("https:// in01.example.com", id="space-before-host"),
    ],
)
def test_endpoint_without_http_scheme_is_refused(endpoint: str) -> None:
    lines = problems(
        f"""\
        clusters:
          - name: prod
            endpoint: "{endpoint}"
        """
    )

    assert lines == [
        "config.yaml:3: clusters[0].endpoint: must start with http:// or https:// "
        f"followed by a host, got {endpoint!r}"
    ]


def test_endpoint_with_a_query_string_is_refused() -> None:
    lines = problems(
        """\
        clusters:
          - name: prod
            endpoint: "https://in01.example.com/?token=x"
        """
    )

    assert lines == [
        "config.yaml:3: clusters[0].endpoint: must not carry a query string or fragment"
    ]


def test_duplicate_cluster_names_point_at_both() -> None:
    lines = problems(
        """\
        clusters:
          - name: prod
            endpoint: https://a.example.com
          - name: staging
            endpoint: https://b.example.com
          - name: prod
            endpoint: https://c.example.com
        """
    )

    assert lines == [
        "config.yaml:6: clusters[2].name: duplicate cluster name 'prod' (also clusters[0])"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "clusters: []\n", "config.yaml:1: clusters: the list is empty", id="empty-list"
        ),
        pytest.param("clusters:\n", "config.yaml:1: clusters: missing", id="null"),
        pytest.param("poll_interval: 30s\n", "config.yaml: clusters: missing", id="absent"),
        pytest.param(
            "clusters: {name: prod}\n",
            "config.yaml:1: clusters: expected a list of clusters, got a mapping",
            id="mapping",
        ),
        pytest.param(
            "clusters: [prod]\n",
            "config.yaml:1: clusters[0]: expected a mapping with name, endpoint and token",
            id="bare-name",
        ),
    ],
)
def test_config_without_usable_clusters_is_refused(text: str, expected: str) -> None:
    lines = problems(text)

    assert len(lines) == 1
    assert lines[0].startswith(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "30", "expected a duration with a unit such as 30s or 5m, got 30", id="bare-number"
        ),
        pytest.param('"30"', "'30' is not a duration", id="quoted-bare-number"),
        pytest.param("30x", "'30x' is not a duration", id="unknown-unit"),
        pytest.param("-1s", "'-1s' is not a duration", id="negative"),
        pytest.param("0s", "'0s' is too short; at least 0.1s", id="zero"),
        pytest.param(
            "1.5s",
            "'1.5s' is not a duration; Prometheus durations take whole numbers: write 1500ms",
            id="fraction",
        ),
        pytest.param(
            "30m1h",
            "'30m1h' is not a duration; put the units from the largest down, each once",
            id="units-out-of-order",
        ),
    ],
)
def test_bad_duration_is_refused_with_the_value_and_forms(value: str, expected: str) -> None:
    lines = problems(MINIMAL + f"poll_interval: {value}\n")

    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:5: poll_interval: {expected}")


def test_yaml_syntax_error_gives_the_line_number() -> None:
    lines = problems(
        """\
        clusters:
          - name: prod
            endpoint: "https://in01.example.com
            token: x
        listen_address: ":9969"
        """
    )

    assert len(lines) == 1
    assert lines[0].startswith("config.yaml:")
    line_number = int(lines[0].split(":")[1])
    assert 3 <= line_number <= 5
    assert "invalid YAML" in lines[0]


def test_tab_indentation_is_a_yaml_error_on_its_line() -> None:
    lines = problems("clusters:\n  - name: prod\n\tendpoint: http://x\n")

    assert len(lines) == 1
    assert lines[0].startswith("config.yaml:3: invalid YAML")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "config.yaml: the config is empty", id="empty-file"),
        pytest.param("# only a comment\n", "config.yaml: the config is empty", id="only-comments"),
        pytest.param(
            "- a\n- b\n",
            "config.yaml:1: the config must be a mapping of keys, not a list",
            id="list",
        ),
    ],
)
def test_config_that_is_not_a_mapping_is_refused(text: str, expected: str) -> None:
    lines = problems(text)

    assert len(lines) == 1
    assert lines[0].startswith(expected)


def test_every_problem_is_reported_at_once() -> None:
    lines = problems(
        """\
        poll_interval: 30
        request_timout: 5s
        clusters:
          - name: prod
            endpoint: in01.example.com
            token: "${MILVUS_TOKEN}"
          - name: prod
            endpoint: https://b.example.com
            jobs: [refresh, imprt]
        """
    )

    assert lines == [
        "config.yaml:2: request_timout: unknown key (did you mean 'request_timeout'?)",
        "config.yaml:1: poll_interval: expected a duration with a unit such as 30s or 5m, got 30",
        "config.yaml:5: clusters[0].endpoint: must start with http:// or https:// followed by a host, got 'in01.example.com'",
        "config.yaml:6: clusters[0].token: environment variable MILVUS_TOKEN is not set",
        "config.yaml:9: clusters[1].jobs[1]: unknown job kind 'imprt' (did you mean 'import'?); use refresh, import and/or restore",
    ]


def test_refused_config_keeps_its_problems_for_callers() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("clusters: []\nmax_retries: -1\n")

    assert [(problem.path, problem.line) for problem in caught.value.problems] == [
        ("max_retries", 2),
        ("clusters", 1),
    ]


def test_missing_config_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    assert str(caught.value).startswith(f"{path}: cannot read config file")


def test_load_config_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(one_cluster(token="${EXPORTER_TEST_TOKEN}"))
    monkeypatch.setenv("EXPORTER_TEST_TOKEN", TOKEN)

    assert load_config(path).clusters[0].token == TOKEN


def test_token_never_appears_in_repr_or_str_of_the_config(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("sk-from-a-file-Wm4kR7")
    config = parse(
        f"""\
        clusters:
          - name: inline
            endpoint: https://a.example.com
            token: {TOKEN}
          - name: from-file
            endpoint: https://b.example.com
            token_file: {token_file}
        """
    )

    shown = repr(config) + str(config) + repr(config.clusters) + str(config.clusters[1])
    assert TOKEN not in shown
    assert "sk-from-a-file-Wm4kR7" not in shown
    assert "inline" in shown and str(token_file) in shown
    assert set(config.secrets) == {TOKEN, "sk-from-a-file-Wm4kR7"}


def test_token_never_appears_in_config_errors() -> None:
    lines = problems(
        one_cluster(token="${MILVUS_TOKEN}", databses="[default]", jobs="[bogus]"),
        {"MILVUS_TOKEN": TOKEN},
    )

    assert len(lines) == 2
    assert all(TOKEN not in line for line in lines)


def cluster(name: str, token: str, endpoint: str = "https://a.example.com") -> ClusterConfig:
    return ClusterConfig(name=name, endpoint=endpoint, token=token)


def test_credential_id_is_shared_by_clusters_with_the_same_token() -> None:
    first = cluster("a", TOKEN, "https://a.example.com")
    second = cluster("b", TOKEN, "https://b.example.com")
    other = cluster("c", TOKEN + "x")

    assert first.credential_id == second.credential_id
    assert first.credential_id != other.credential_id


@pytest.mark.parametrize(
    "token", [TOKEN, "root:Milvus", "a" * 64], ids=["api-key", "user-password", "hex-like"]
)
def test_credential_id_does_not_reveal_the_token(token: str) -> None:
    credential = cluster("a", token).credential_id

    assert token not in credential
    assert token.split(":")[-1] not in credential


def test_clusters_without_a_token_are_told_apart_by_endpoint() -> None:
    first = cluster("a", "", "http://milvus-a:19530")
    second = cluster("b", "", "http://milvus-b:19530")

    assert first.credential_id != second.credential_id


def test_a_lone_surrogate_in_a_name_is_refused_with_its_key_path(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text('clusters:\n  - name: "bad\\ud800name"\n    endpoint: http://127.0.0.1:1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == (
        f"{path}:2: clusters[0].name: is not valid Unicode text (it holds a lone UTF-16 surrogate)"
    )


def test_undecodable_bytes_in_an_environment_variable_are_refused_without_echoing_them(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "clusters:\n  - name: prod\n    endpoint: http://127.0.0.1:1\n    token: ${TOKEN}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"TOKEN": "secret\udcff"})
    assert "clusters[0].token: is not valid Unicode text" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_an_empty_state_file_path_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        'state_file: " "\nclusters:\n  - name: prod\n    endpoint: http://127.0.0.1:1\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}:1: state_file: expected a file path"


def test_a_key_given_twice_is_refused_instead_of_silently_keeping_the_last(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "poll_interval: 30s\npoll_interval: 5s\n"
        "clusters:\n  - name: prod\n    endpoint: http://127.0.0.1:1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}:2: poll_interval: duplicate key (only one may be given)"


def test_exclusions_without_a_pattern_are_refused_because_they_could_never_apply(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "clusters:\n  - name: prod\n    endpoint: http://127.0.0.1:1\n"
        "    databases: [default]\n    exclude_databases: [tmp_*]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(
        f"{path}:5: clusters[0].exclude_databases: only applies to databases found through a pattern"
    )


def test_database_patterns_and_discovery_intervals_are_read_per_cluster(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "discovery_interval: 10m\nclusters:\n  - name: prod\n    endpoint: http://127.0.0.1:1\n"
        "    databases: [default, 'prod_*']\n    exclude_databases: ['*_tmp']\n"
        "    discovery_interval: 1m\n  - name: other\n    endpoint: http://127.0.0.1:2\n"
        "    databases: ['*']\n"
    )
    config = load_config(path, {})
    prod, other = config.clusters
    assert config.discovery_interval == 600
    assert (prod.database_names, prod.database_patterns) == (("default",), ("prod_*",))
    assert prod.discovery_interval == 60 and other.discovery_interval is None
    assert prod.matches("prod_eu") and not prod.matches("prod_tmp") and not prod.matches("dev")


@pytest.mark.parametrize("key", [key for key in TOP_LEVEL_KEYS if key != "clusters"])
def test_every_declared_top_level_key_is_read_and_checked(key: str) -> None:
    lines = problems(MINIMAL + f"{key}: {{given: 1}}\n")

    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:5: {key}: expected ")
    assert lines[0].endswith("a mapping")


@pytest.mark.parametrize("key", CLUSTER_KEYS)
def test_every_declared_cluster_key_is_read_and_checked(key: str) -> None:
    keys = {"name": "prod", "endpoint": "https://in01.example.com:19530", key: "{given: 1}"}
    lines = problems("clusters:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in keys.items()))

    assert len(lines) == 1
    assert lines[0].startswith(f"config.yaml:{2 + list(keys).index(key)}: clusters[0].{key}: ")
    assert ": expected " in lines[0]
    assert lines[0].endswith("a mapping")
