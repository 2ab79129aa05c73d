"""``jobs describe``: one job in detail, as aligned fields for a person or JSON for a script.

The job is asked for and shown as its kind declares (``Endpoints.describe``: the path and how
the id travels; ``JobKind.described``: the daemon's own parser of the answer; ``JobKind.shown``:
its fields), so the command and ``/metrics`` never disagree about what the server said. Times
are shown in RFC 3339 UTC whatever offset the server wrote them in, and nothing is shown that
the server did not send: a failed import has no completion time, and none is made up. A job the
server does not know gives the same one line and exit code for every kind.

    Cluster:    prod
    Kind:       import
    Job ID:     458912301925678745
    State:      Failed
    Rows:       0 of 0 imported
    Completed:  -
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

from ..config.loader import Config
from ..kinds import kind_named
from ..upstream.client import ApiError
from . import arguments
from .errors import EXIT_OK, CommandError
from .terminal import Console, explain, show_fields, table
from .upstream import Upstream, find_cluster, is_not_found, not_found_line


@dataclass(frozen=True)
class DescribeRequest:
    config_path: str
    cluster: str
    kind: str
    job_id: str
    output: str


def describe_request(args: argparse.Namespace) -> DescribeRequest:
    return DescribeRequest(
        config_path=args.config,
        cluster=args.cluster,
        kind=args.kind,
        job_id=arguments.job_id(args.job_id, args.kind),
        output=args.output,
    )


def run_describe(
    request: DescribeRequest, config: Config, upstream: Upstream, console: Console
) -> int:
    cluster = find_cluster(config, request.cluster)
    kind = kind_named(request.kind)
    endpoints = kind.endpoints
    body = endpoints.describe_body(request.job_id)
    try:
        described = upstream.call(
            cluster,
            lambda client: client.describe(
                endpoints.describe, body, lambda data: kind.described(data, time.time())
            ),
        )
    except ApiError as error:
        if is_not_found(error, request.kind):
            raise CommandError(
                not_found_line(cluster, request.kind, request.job_id, error)
            ) from None
        raise CommandError(
            f"{cluster.name}: describe {request.kind} job: {explain(error)}"
        ) from None
    shown = kind.shown(described, time.time())
    for problem in shown.problems:  # a part not shown is named: the rest is still shown
        console.problem(f"{cluster.name}: {problem}")
    if request.output == "json":
        document = {"cluster": cluster.name, "kind": kind.name, **shown.document}
        console.line(json.dumps(document, indent=2))
        return EXIT_OK
    show_fields(
        console,
        [
            ("Cluster", cluster.name),
            ("Kind", kind.name),
            *((label, console.paint(text, text) if painted else text)
              for label, text, painted in shown.fields),
        ],
    )  # fmt: skip
    if shown.table is not None:
        header, rows, state_column = shown.table
        console.line()

        def paint(column: int, text: str) -> str:
            return console.paint(text, text) if column == state_column else text

        for line in table(header, rows, paint):
            console.line(line)
    return EXIT_OK
