"""A faithful fake of the Milvus / Zilliz Cloud REST v2 job endpoints, standard library only.

Used by `demo` and `simulate`, integration and end-to-end tests, and benchmarks; the exporter's
product path never imports it. Two flavours imitate two real servers: "zilliz" (the published
Zilliz Cloud pages, the default) and "milvus" (a self-hosted Milvus); see `flavor.py`. Each job
kind (refresh, import, restore) is one module of `kinds/`, registered in `kinds.KINDS`; the rest
(`world.py`, `api.py`, `core.py`, `faults.py`, `control.py`, `cli.py`) names no kind.

    sim = Simulator(SimulatorOptions(seed=7, time_scale=60, flavor="milvus"))
    with sim.serve("127.0.0.1", 0) as server:
        ...  # point the exporter at server.url with token "demo-token"
"""

from .cli import (
    add_arguments,
    add_flavor_argument,
    listen_address,
    options_from_args,
    parse_listen,
    run_forever,
)
from .core import Simulator
from .faults import FAULT_KINDS, Fault
from .flavor import FlavorRules
from .options import FLAVORS, RequestRecord, SimulatorOptions
from .server import SimulatorServer

__all__ = [
    "FAULT_KINDS",
    "FLAVORS",
    "Fault",
    "FlavorRules",
    "RequestRecord",
    "Simulator",
    "SimulatorOptions",
    "SimulatorServer",
    "add_arguments",
    "add_flavor_argument",
    "listen_address",
    "options_from_args",
    "parse_listen",
    "run_forever",
]
