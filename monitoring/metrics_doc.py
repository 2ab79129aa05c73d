"""docs/metrics.md: the reference table of every metric, from the exporter's metric catalogue
(``exporter/exposition/catalogue.py``), one section per group in the order of /metrics."""

from __future__ import annotations

from exporter.exposition.catalogue import GROUPS

from . import COMMAND


def markdown() -> str:
    """docs/metrics.md: the reference table, one section per group."""
    lines = [
        "# Metrics",
        "",
        f"Generated from `exporter/exposition/catalogue.py` by `{COMMAND}`;",
        "`tests/test_catalogue.py` fails while this file is stale. Edit the catalogue, not this file.",
        "",
        "All job series are **polled**: values are as of the last poll, not live. No sample carries",
        "a timestamp. `cluster` in the label lists is the `milvus_cluster` label (the config name).",
        "",
    ]
    for title, group in GROUPS:
        lines += [f"## {title}", "", "| metric | type | labels | meaning |", "|---|---|---|---|"]
        for metric in group:
            shown = ", ".join(label.replace("milvus_cluster", "cluster") for label in metric.labels)
            name = metric.series_names[0] if metric.type == "counter" else metric.name
            lines.append(f"| `{name}` | {metric.type} | {shown} | {metric.doc} |")
        lines.append("")
    lines += [
        "## The process",
        "",
        "`process_*` and `python_*`: the exporter's own process, from prometheus-client's "
        "collectors (CPU, memory, file descriptors, garbage collection).",
        "",
    ]
    return "\n".join(lines)
