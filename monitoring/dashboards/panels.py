"""PromQL helpers and panel builders: each returns one Grafana panel as a dict, without its id
and grid position, which the layout (``layout.Grid``) assigns when the panel is placed.

Every panel and query uses the ``${datasource}`` variable, never a data source id, so the
dashboards work on any Grafana as provisioned.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def zero_while_reported(expr: str, reporting: str, label: str = "") -> str:
    """``expr``, or 0 when ``expr`` has no series but ``reporting`` (a series every exporter
    exports while it works) has: "nothing counted" reads 0, "no exporter reports" reads
    No data, which ``or vector(0)`` would also turn into 0.

    ``or on ()`` matches on no label, so the zero joins only when ``expr`` is empty; with
    ``label``, the zero is labelled ``label="(none)"`` (a legend for graphs grouped by it).
    """
    zero = f"0 * max({reporting})"
    if label:
        zero = f'label_replace({zero}, "{label}", "(none)", "", "")'
    return f"{expr}\nor on () {zero}"


UNKNOWN = -1
"""Stands for "not known" in a table cell (a job without a start time); shown as "unknown"."""


def or_unknown(expr: str, rows: str, key: str) -> str:
    """``expr`` for the ``key``s that have it, ``UNKNOWN`` for the other ``key``s of ``rows``."""
    return f"{expr}\nor on ({key}) (max by ({key}) ({rows}) * 0 - 1)"


def unknown_mapping() -> list[Json]:
    return [
        {
            "type": "value",
            "options": {str(UNKNOWN): {"color": "text", "index": 0, "text": "unknown"}},
        }
    ]


def datasource() -> Json:
    return {"type": "prometheus", "uid": "${datasource}"}


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: ``base`` colour below the first step, then each step's colour."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def value_mapping(texts: dict[str, tuple[str, str]]) -> list[Json]:
    """``{"1": ("UP", "green")}`` -> Grafana value mappings showing a word in a colour."""
    return [
        {
            "type": "value",
            "options": {
                value: {"color": color, "index": index, "text": text}
                for index, (value, (text, color)) in enumerate(texts.items())
            },
        }
    ]


UP_DOWN = value_mapping({"1": ("UP", "green"), "0": ("DOWN", "red")})


def override(field_name: str, **properties: Any) -> Json:
    """A field override by display name; ``custom__x`` stands for the property ``custom.x``."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [
            {"id": key.replace("__", "."), "value": value} for key, value in properties.items()
        ],
    }


def fixed_colors(colors: dict[str, str]) -> list[Json]:
    return [
        override(name, color={"fixedColor": color, "mode": "fixed"})
        for name, color in colors.items()
    ]


def target(
    expr: str,
    legend: str = "",
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> Json:
    return {
        "datasource": datasource(),
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref_id,
    }


def _panel(
    panel_type: str,
    title: str,
    description: str,
    targets: list[Json],
    defaults: Json,
    options: Json,
    overrides: list[Json] | None = None,
) -> Json:
    return {
        "datasource": datasource(),
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "links": [],
        "options": options,
        "targets": targets,
        "title": title,
        "type": panel_type,
    }


def linked(panel: Json, title: str, url: str) -> Json:
    """``panel`` with a link in its header menu (Grafana expands variables in ``url``)."""
    panel["links"].append({"targetBlank": False, "title": title, "url": url})
    return panel


def _field_defaults(
    unit: str,
    *,
    color: Json,
    steps: Json | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    mappings: list[Json] | None = None,
    custom: Json | None = None,
    decimals: int | None = None,
) -> Json:
    defaults: Json = {
        "color": color,
        "mappings": mappings or [],
        "thresholds": steps or thresholds("green"),
        "unit": unit,
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom is not None:
        defaults["custom"] = custom
    if decimals is not None:
        defaults["decimals"] = decimals
    return defaults


def _reduce_last() -> Json:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    steps: Json | None = None,
    overrides: list[Json] | None = None,
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    decimals: int | None = None,
) -> Json:
    """A single number (or one per series), coloured by thresholds."""
    return _panel(
        "stat",
        title,
        description,
        targets,
        _field_defaults(
            unit,
            color={"mode": "thresholds"},
            steps=steps,
            mappings=mappings,
            decimals=decimals,
        ),
        {
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": _reduce_last(),
            "showPercentChange": False,
            "textMode": text_mode,
            "wideLayout": True,
        },
        overrides,
    )


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    minimum: float | None = 0,
    maximum: float | None = None,
    stacked: bool = False,
    steps: Json | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A graph over the dashboard's time range; ``steps`` draws thresholds as dashed lines."""
    custom = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "barAlignment": 0,
        "drawStyle": "line",
        "fillOpacity": 30 if stacked else 10,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "auto",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "dashed" if steps else "off"},
    }
    return _panel(
        "timeseries",
        title,
        description,
        targets,
        _field_defaults(
            unit,
            color={"mode": "palette-classic"},
            steps=steps,
            minimum=minimum,
            maximum=maximum,
            custom=custom,
        ),
        {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        overrides,
    )


def bargauge(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    steps: Json,
    minimum: float | None = 0,
    maximum: float | None = None,
) -> Json:
    """One horizontal bar per series, coloured by thresholds: a ranking at a glance."""
    return _panel(
        "bargauge",
        title,
        description,
        targets,
        _field_defaults(
            unit, color={"mode": "thresholds"}, steps=steps, minimum=minimum, maximum=maximum
        ),
        {
            "displayMode": "gradient",
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": _reduce_last(),
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        },
    )


def state_timeline(
    title: str,
    description: str,
    targets: list[Json],
    *,
    mappings: list[Json],
) -> Json:
    """One lane per series; value mappings turn 0/1 into coloured words."""
    return _panel(
        "state-timeline",
        title,
        description,
        targets,
        _field_defaults(
            "none",
            color={"mode": "thresholds"},
            mappings=mappings,
            custom={
                "fillOpacity": 80,
                "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                "insertNulls": False,
                "lineWidth": 0,
                "spanNulls": False,
            },
        ),
        {
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "auto",
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def table(
    title: str,
    description: str,
    targets: list[Json],
    *,
    columns: dict[str, str],
    unit: str | None = None,
    overrides: list[Json] | None = None,
    sort_by: tuple[str, bool] | None = None,
) -> Json:
    """An instant table; ``columns`` maps the fields to show, in order, to their headers.

    Each query's value field is ``Value`` when there is one query and ``Value #<refId>`` when
    there are several (joined on their labels by a ``merge``); a value field not in ``columns``
    is hidden, and so is every other field (time, scrape labels). ``unit`` is required whenever a
    value field is shown.
    """
    value_fields = (
        ["Value"] if len(targets) == 1 else [f"Value #{item['refId']}" for item in targets]
    )
    hidden = {"Time": True, "__name__": True, "job": True, "instance": True}
    hidden.update({name: True for name in value_fields if name not in columns})
    transformations: list[Json] = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": hidden,
                "includeByName": {},
                "indexByName": {name: index for index, name in enumerate(columns)},
                "renameByName": columns,
            },
        }
    )
    panel = _panel(
        "table",
        title,
        description,
        targets,
        _field_defaults(
            unit or "none",
            color={"mode": "thresholds"},
            custom={
                "align": "auto",
                "cellOptions": {"type": "auto"},
                "filterable": True,
                "inspect": True,
            },
        ),
        {
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
            "sortBy": (
                [{"desc": sort_by[1], "displayName": sort_by[0]}] if sort_by is not None else []
            ),
        },
        overrides,
    )
    panel["transformations"] = transformations
    return panel
