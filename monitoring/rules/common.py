"""What every alert rule is made of: the ``Rule`` record, and the ``Context`` a rule reads its
thresholds from and links into the dashboards with.

The panels the alerts link to are looked up in the generated dashboards, so a link cannot point
at a panel that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dashboards import EXPORTER_FILE, OVERVIEW_FILE, build_dashboards
from ..dashboards.layout import panel_id
from ..dashboards.panels import Json
from ..settings import Settings

COLLECTION_VARIABLES = {name: name for name in ("milvus_cluster", "database", "collection")}
"""A job alert's dashboard link selects its cluster, database and collection."""
INSTANCE_VARIABLES = {"job": "job", "instance": "instance"}
"""An exporter alert's dashboard link selects its scrape job and instance."""


@dataclass(frozen=True)
class Rule:
    """One alert rule. ``comment`` says why the rule is written the way it is (it becomes the
    comment above the rule); ``annotations`` are in the order they are written."""

    alert: str
    comment: str
    expr: str
    for_: str
    severity: str
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Context:
    """The thresholds file, and the dashboards built from it that the alerts link to."""

    settings: Settings
    overview: Json
    exporter: Json

    @classmethod
    def of(cls, settings: Settings) -> Context:
        boards = build_dashboards(settings)
        return cls(settings, boards[OVERVIEW_FILE], boards[EXPORTER_FILE])

    @property
    def lookback(self) -> str:
        return self.settings.alerts.lookback.text

    @property
    def horizon(self) -> str:
        return self.settings.alerts.sight_horizon.text

    def links(
        self, alert: str, board: Json, panel: str, variables: dict[str, str]
    ) -> tuple[tuple[str, str], tuple[str, str]]:
        """runbook_url (the alert's section of docs/alerts.md) and dashboard_url (``panel`` in
        view, each Grafana variable set from the alert label of the same name)."""
        query = "".join(
            f"var-{variable}={{{{ $labels.{label} | urlquery }}}}&"
            for variable, label in variables.items()
        )
        return (
            ("runbook_url", f"{self.settings.runbook_url}#{alert.lower()}"),
            (
                "dashboard_url",
                f"{self.settings.grafana_url}/d/{board['uid']}?{query}"
                f"viewPanel={panel_id(board, panel)}",
            ),
        )
