"""What a simulated job kind declares, and what it may ask of the world.

A kind (`refresh.py`, `imports.py`, `restore.py`) is one `SimKind` subclass in one module:
how its jobs are scheduled (a `Stream` per database), rendered (list records, describe answers),
asked for (its routes: list body, describe id checks, not-found codes), which knobs bend it and
how a test starts one with a chosen fate. The world, the API, the control API, the faults and
the command line iterate over the registry in `__init__.py` and name no kind.

A kind never imports the world: it reaches the world's jobs and collections through the
`JobWorld` protocol that a `Request` carries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from ..fields import Invalid, collection_not_found, database_not_found, optional_string
from ..flavor import FlavorRules
from ..options import SimulatorOptions
from ..reply import Reply, success
from .knobs import Knob, KnobValues

Family = Literal["external", "plain"]
"""Which collections a kind's jobs run on: external ones (refresh) or plain ones (the rest)."""

DEFAULT_DATABASE = "default"


class Job(Protocol):
    """What the world needs of any kind's job: who it is, where it lives, when it ends
    (`end_at` is infinite for a job that never finishes)."""

    @property
    def job_id(self) -> int: ...

    @property
    def database(self) -> str: ...

    @property
    def collection(self) -> str: ...

    @property
    def end_at(self) -> float: ...


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class Settings:
    """Everything a kind reads to decide: the options, the flavour's rules, the knob values."""

    options: SimulatorOptions
    rules: FlavorRules
    knobs: KnobValues


@dataclass(frozen=True)
class Placement:
    """Where a new database sits among all the world ever had, so job ids never collide:
    its index, and the index of its first collection among every database's collections."""

    database_index: int
    collection_index: int


@dataclass(frozen=True)
class RecordsAnswer:
    """A list answer's `records` array as JSON bytes, with the number of records before paging."""

    records_json: bytes
    count: int


class Stream(ABC, Generic[J]):
    """One kind's source of jobs in one database: its seeded dice and its automatic arrivals."""

    @abstractmethod
    def history(self, now: float) -> list[J]:
        """The jobs that already happened when the database appears at `now`."""

    @abstractmethod
    def due(self, now: float) -> list[J]:
        """Every automatic job created up to `now` that is not created yet."""

    @abstractmethod
    def next_auto_at(self) -> float:
        """When the next automatic job is created (infinite: never)."""

    @abstractmethod
    def scripted(
        self, now: float, collection: str, outcome: str, duration_seconds: float, reason: str
    ) -> J:
        """A test's job with a chosen fate; it rolls no dice that seeded jobs depend on."""

    @abstractmethod
    def drop_collection(self, collection: str) -> None:
        """No new jobs for this collection (the jobs it had stay)."""


class JobWorld(Protocol):
    """What a kind may ask of the world (``world.World`` has it)."""

    def has_database(self, name: str) -> bool: ...

    def collections(self, database: str, family: Family) -> list[str]: ...

    def collection_names(self, database: str) -> list[str]: ...

    def records(
        self,
        kind: SimKind[Any],
        database: str,
        collection: str | None,
        now: float,
        page: tuple[int, int] | None = None,
    ) -> RecordsAnswer: ...

    def job(self, kind: SimKind[Any], job_id: int, now: float) -> Job | None: ...

    def create_job(
        self, kind: SimKind[Any], database: str, now: float, make: Callable[[Any], Job]
    ) -> Job: ...

    def wall_base(self, now: float) -> float: ...


@dataclass(frozen=True)
class Request:
    """One API request as a kind's handlers see it, with the world it may read and change."""

    body: dict[str, object]
    now: float
    token: str
    database_header: str | None
    world: JobWorld
    settings: Settings

    def database_name(self) -> str:
        """The body's `dbName`, else (when the flavour reads it) the ``DB-Name`` header, else
        "default"."""
        name = optional_string(self.body, "dbName")
        if not name and self.settings.rules.database_header:
            name = self.database_header
        return name or DEFAULT_DATABASE

    def database(self) -> str:
        """The request's database, which must exist (code 800 otherwise)."""
        name = self.database_name()
        if not self.world.has_database(name):
            raise Invalid(database_not_found(name))
        return name

    def require_collection(self, database: str, collection: str) -> None:
        """Code 100 unless the collection exists (external or not)."""
        if collection not in self.world.collection_names(database):
            raise Invalid(collection_not_found(database, collection))

    def success(self, data: dict[str, object]) -> Reply:
        return success(data, self.settings.rules.success_code)


Handler = Callable[[Request], Reply]


class SimKind(ABC, Generic[J]):
    """A job kind of the simulated server, declared once. Subclasses set the class attributes
    and implement the abstract methods; `__init__.py` registers one instance."""

    name: ClassVar[str]
    """As in the exporter's config (`jobs: [...]`): refresh, import, restore."""
    list_path: ClassVar[str]
    describe_path: ClassVar[str]
    family: ClassVar[Family]
    control_route: ClassVar[str]
    """`POST /_simulator/<control_route>` starts a job with a chosen fate."""
    outcomes: ClassVar[tuple[str, ...]]
    """The fates a test may choose; the first is the default."""
    unknown_state: ClassVar[str]
    """The state the `unknown_state` fault writes into this kind's records."""
    sample_record: ClassVar[bytes]
    """One record as JSON, repeated by the `huge_body` fault."""
    knobs: ClassVar[tuple[Knob, ...]] = ()
    trigger_paths: ClassVar[tuple[str, ...]] = ()
    """Paths that start jobs: the only ones a self-hosted Milvus rate-limits."""
    newest_first: ClassVar[bool] = False
    """Whether the list shows jobs in reverse `order_key` order."""
    lists_dropped_collections: ClassVar[bool] = True
    """Whether the list keeps showing the jobs of a dropped collection until retention."""
    collection_required: ClassVar[bool] = False
    """Whether a test must name the collection of a job it starts (else: the first one)."""

    def routes(self) -> dict[str, Handler]:
        """Every path this kind answers, with its handler."""
        return {self.list_path: self.list_answer, self.describe_path: self.describe_answer}

    def served(self, settings: Settings) -> bool:
        """Whether the server has this kind's endpoints at all (not: Go's plain-text 404)."""
        return True

    def public_id(self, job_id: int) -> int | str:
        """The job id as list records carry it (and the control API answers it)."""
        return job_id

    def default_reason(self, outcome: str) -> str:
        """The reason a job started with `outcome` carries when the test gives none."""
        return f"{self.name} failed: simulated failure"

    def describe_database(self, request: Request) -> str | None:
        """The database a describe request is about (for faults and the request log)."""
        job = request.world.job(self, self.describe_job_id(request.body), request.now)
        return job.database if job else None

    @abstractmethod
    def new_stream(
        self, settings: Settings, database: str, collections: tuple[str, ...], where: Placement
    ) -> Stream[J]:
        """The database's stream of this kind's jobs (ValueError if the id scheme is full)."""

    @abstractmethod
    def order_key(self, job: J) -> Any:
        """Sorts a database's jobs into the order the list answers them in."""

    @abstractmethod
    def retention_seconds(self, settings: Settings) -> float:
        """How long (simulated) a finished job stays known before the server forgets it."""

    @abstractmethod
    def list_record(self, job: J, now: float, base: float, settings: Settings) -> dict[str, object]:
        """The job as a list answer has it at `now`."""

    @abstractmethod
    def next_change(self, job: J, now: float) -> float:
        """The first instant after `now` at which the job's list record may look different."""

    @abstractmethod
    def describe_job_id(self, body: dict[str, object]) -> int:
        """The describe request's job id, read as the server reads it (raises `Invalid`)."""

    @abstractmethod
    def list_answer(self, request: Request) -> Reply: ...

    @abstractmethod
    def describe_answer(self, request: Request) -> Reply: ...
