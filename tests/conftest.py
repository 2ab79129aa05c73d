"""Fixtures that start real servers on 127.0.0.1: the simulator and the exporter daemon."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.log import configure_logging
from exporter.simulator import Simulator, SimulatorOptions
from exporter.web.server import ExporterHTTPServer
from tests.scheduling import (  # noqa: F401 (hooks: the parallel run's groups and order)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_protocol,
)

# Warnings and errors only: the daemon's debug lines (one per poll) would cost the in-process
# exporters of these tests interpreter time and fill the captured output.
configure_logging("warning", "console")

TOKEN_A = "token-alpha-5f1c2e"
TOKEN_B = "token-bravo-9a7d33"

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class RunningExporter:
    daemon: Daemon
    server: ExporterHTTPServer

    @property
    def url(self) -> str:
        return self.server.url

    def scrape(self) -> Series:
        """GET /metrics and parse it the way Prometheus does."""
        response = requests.get(self.url + "/metrics", timeout=5)
        response.raise_for_status()
        parsed: Series = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return parsed

    def wait_for_cycles(self, count: int = 1, timeout: float = 15.0) -> None:
        """Wait until ``count`` more poll cycles have been published."""
        target = self.daemon.cache.generation + count
        deadline = time.monotonic() + timeout
        while self.daemon.cache.generation < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} poll cycle(s) within {timeout}s")
            time.sleep(0.02)


def value(parsed: Series, name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def series(parsed: Series, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample_name, labels) in parsed if sample_name == name]


@contextlib.contextmanager
def running_simulator(flavor: str = "zilliz") -> Iterator[tuple[Simulator, str]]:
    """The integration tests' world (seed 7, two tokens, a minute per second) of one flavour."""
    sim = Simulator(
        SimulatorOptions(
            seed=7,
            flavor=flavor,  # type: ignore[arg-type]
            tokens=(TOKEN_A, TOKEN_B),
            databases=("default", "analytics"),
            collections_per_database=3,
            time_scale=60.0,
        )
    )
    with sim.serve("127.0.0.1", 0) as server:
        yield sim, server.url


@pytest.fixture
def simulator() -> Iterator[tuple[Simulator, str]]:
    with running_simulator() as started:
        yield started


def cluster(
    url: str,
    name: str = "prod",
    token: str = TOKEN_A,
    databases: tuple[str, ...] = ("default", "analytics"),
) -> ClusterConfig:
    return ClusterConfig(name=name, endpoint=url, token=token, databases=databases)


def serve_quickly(server: ExporterHTTPServer) -> None:
    """Serve in a thread that notices shutdown() within 50 ms (the default polls every 0.5 s,
    which every test using an exporter paid again at teardown)."""
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()


@pytest.fixture
def start_exporter() -> Iterator[Callable[..., RunningExporter]]:
    """Start the real daemon and HTTP server for a config; everything stops at teardown."""
    running: list[RunningExporter] = []

    def start(*clusters: ClusterConfig, wait: bool = True, **settings: object) -> RunningExporter:
        values: dict[str, object] = {"poll_interval": 0.5, "request_timeout": 2.0, "max_retries": 0}
        values.update(settings)
        config = Config(clusters=clusters, listen_address="127.0.0.1:0", **values)  # type: ignore[arg-type]
        daemon = Daemon(config)
        server = ExporterHTTPServer(("127.0.0.1", 0), lambda: daemon)
        serve_quickly(server)
        exporter = RunningExporter(daemon, server)
        running.append(exporter)
        daemon.start()
        if wait:
            exporter.wait_for_cycles(1)
        return exporter

    yield start
    for exporter in running:
        exporter.daemon.stop(timeout=5)
        exporter.server.shutdown()
        exporter.server.server_close()
