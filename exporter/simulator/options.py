"""Knobs of the simulated upstream, and the record of what it was asked.

Everything the simulator does is decided by a `SimulatorOptions` value, so two simulators built
from equal options (and fed the same clock) answer the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Flavor = Literal["zilliz", "milvus"]
FLAVORS: tuple[Flavor, ...] = ("zilliz", "milvus")
RateLimitStyle = Literal["http_429", "code_1807", "code_8"]
RATE_LIMIT_STYLES: tuple[RateLimitStyle, ...] = ("http_429", "code_1807", "code_8")
RateLimitScope = Literal["every_endpoint", "refresh_trigger"]
RATE_LIMIT_SCOPES: tuple[RateLimitScope, ...] = ("every_endpoint", "refresh_trigger")
MAX_UTC_OFFSET_MINUTES = 14 * 60
IMPORT_RETENTION_SECONDS = 3 * 3600.0


@dataclass(frozen=True)
class SimulatorOptions:
    """How big the fake world is, how fast it moves and how strictly it polices callers.

    `flavor` picks the server being imitated: "zilliz" follows the published Zilliz Cloud pages,
    "milvus" what a self-hosted Milvus sends (see `flavor.py`). The knobs left at None
    (`rate_limit_style`, `rate_limit_scope`, `utc_offset_minutes`) take the flavour's value; set,
    they win over it, so one flavour can still be bent to test a single difference.

    `time_scale` is simulated seconds per real second: tests use 60 so that a ten-minute refresh
    takes ten real seconds. `requests_per_second` of 0 or None turns rate limiting off (benchmarks).
    `hang_probability` is the share of automatic refresh jobs that never finish, which is what
    makes "stuck job" alerts worth having; `manual_commit_probability` the share of successful
    imports created with auto-commit off, the only ones that show Uncommitted and Committing.
    `import_retention_seconds` is how long (simulated) a finished import stays listed; tests
    shorten the server's three hours to watch it forget one. `dropped_collections` names
    collections ("database/collection") that are dropped from the start: gone from
    `collections/list`, their jobs still listed for the usual retention.

    `knobs` holds the knobs the job kinds declare (`kinds/`), by name, e.g.
    ``{"restore_jobs_per_database": 2}``; a knob left out takes its declared default, and an
    unknown name or a bad value is refused when the `Simulator` is built.
    """

    seed: int = 7
    flavor: Flavor = "zilliz"
    tokens: tuple[str, ...] = ("demo-token",)
    databases: tuple[str, ...] = ("default", "analytics")
    collections_per_database: int = 4
    refresh_jobs_per_collection: int = 3
    import_jobs_per_database: int = 5
    time_scale: float = 1.0
    latency_seconds: float = 0.0
    requests_per_second: int | None = 20
    rate_limit_style: RateLimitStyle | None = None
    rate_limit_scope: RateLimitScope | None = None
    utc_offset_minutes: int | None = None
    legacy_success_code: bool = False
    import_paging: bool = False
    auto_refresh: bool = True
    failure_probability: float = 0.2
    hang_probability: float = 0.02
    manual_commit_probability: float = 0.1
    import_retention_seconds: float = IMPORT_RETENTION_SECONDS
    dropped_collections: tuple[str, ...] = ()
    knobs: Mapping[str, object] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "knobs", MappingProxyType(dict(self.knobs)))
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}")
        if self.rate_limit_style is not None and self.rate_limit_style not in RATE_LIMIT_STYLES:
            raise ValueError(f"rate_limit_style must be one of {', '.join(RATE_LIMIT_STYLES)}")
        if self.rate_limit_scope is not None and self.rate_limit_scope not in RATE_LIMIT_SCOPES:
            raise ValueError(f"rate_limit_scope must be one of {', '.join(RATE_LIMIT_SCOPES)}")
        offset = self.utc_offset_minutes
        if offset is not None and not -MAX_UTC_OFFSET_MINUTES <= offset <= MAX_UTC_OFFSET_MINUTES:
            raise ValueError("utc_offset_minutes must be within 14 hours of UTC")
        if self.import_retention_seconds <= 0:
            raise ValueError("import_retention_seconds must be positive")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        for name in ("failure_probability", "hang_probability", "manual_commit_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if len(set(self.databases)) != len(self.databases):
            raise ValueError("database names must be unique")
        for name in self.dropped_collections:
            database, _, collection = name.partition("/")
            if not database or not collection:
                raise ValueError(f"dropped collections are named database/collection, not {name!r}")


@dataclass(frozen=True)
class RequestRecord:
    """One upstream API request as the simulator saw it; rate-limit tests read these.

    `arrival` is the options clock (real seconds, not simulated) when the request reached the
    host (the kernel's receive time where the server can read it); `code` is the envelope code of
    the answer, or -1 when the answer had none (HTML, cut JSON, closed connection).
    """

    arrival: float
    token: str
    path: str
    database: str | None
    status: int
    code: int
