"""Helpers for the simulator's per-kind tests: a clock that moves when told, and a started
simulator to post to over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import requests

from exporter.simulator import Simulator, SimulatorOptions, SimulatorServer

START = 1_795_431_025.0
CONTROL = "/_simulator"


class FakeClock:
    """Real seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Served:
    """A simulator, its server and its clock."""

    simulator: Simulator
    server: SimulatorServer
    clock: FakeClock

    def post(
        self,
        path: str,
        body: object,
        token: str | None = "demo-token",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {token}"} if token is not None else {}
        sent.update(headers or {})
        return requests.post(self.server.url + path, json=body, headers=sent, timeout=5)

    def payload(self, path: str, body: object, **kwargs: Any) -> dict[str, Any]:
        answer = json.loads(self.post(path, body, **kwargs).text)
        assert isinstance(answer, dict), answer
        return answer

    def data(self, path: str, body: object) -> Any:
        answer = self.payload(path, body)
        assert answer["code"] == 0, answer
        return answer["data"]

    def records(self, path: str, body: object | None = None) -> list[dict[str, Any]]:
        return list(self.data(path, body or {})["records"])

    def control(self, method: str, route: str, body: object | None = None) -> requests.Response:
        return requests.request(method, self.server.url + CONTROL + route, json=body, timeout=5)


def start(clock: FakeClock, **overrides: Any) -> Served:
    """A simulator with no automatic jobs and no rate limit unless the overrides say so."""
    options = SimulatorOptions(clock=clock, auto_refresh=False, requests_per_second=None)
    simulator = Simulator(replace(options, **overrides))
    return Served(simulator, simulator.serve("127.0.0.1", 0), clock)
