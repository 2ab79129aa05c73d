"""The operator commands' flags, and the checks every command shares before anything is sent.

All flags are declared here, in one place, so ``--help`` of every command reads alike and a
flag shared by several (``--config``, ``--cluster``, ``--timeout``) has one spelling and one
help text. What a flag's value must look like is checked without the config and without the
network: a usage error costs no request.
"""

from __future__ import annotations

import argparse

from ..config.durations import parse_duration
from ..kinds import KINDS, kind_named
from .errors import EXIT_USAGE, CommandError

REFRESH_COMMAND = "refresh"
"""The verb of the command that starts a refresh (the one place it is spelled)."""
DEFAULT_WAIT_TIMEOUT = "2h"
DEFAULT_WAIT_INTERVAL = "2s"
MAX_INT64_DIGITS = 19


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``jobs list|describe|wait`` and ``refresh`` on the CLI's sub-command parser."""
    jobs = commands.add_parser(
        "jobs", help=f"list and describe {_and(KINDS.names)} jobs, wait for refresh jobs"
    )
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", help="list the jobs of every configured target that matches the filters"
    )
    _add_config_argument(listing)
    listing.add_argument("--cluster", metavar="C", help="only this configured cluster")
    listing.add_argument("--database", metavar="D", help="only this configured database")
    listing.add_argument("--collection", metavar="X", help="only jobs of this collection")
    listing.add_argument(
        "--kind", choices=KINDS.names, help="only jobs of this kind (clusters[].jobs)"
    )
    listing.add_argument(
        "--state",
        metavar="S",
        help="only jobs in this state: pending, running, completed, failed, or an exact state "
        "(RefreshFailed, Importing, ...); comma-separated for several",
    )
    _add_output_argument(listing)

    describe = actions.add_parser("describe", help="show one job in detail")
    _add_config_argument(describe)
    _add_cluster_argument(describe)
    describe.add_argument(
        "--kind", choices=KINDS.names, default=KINDS[0].name, help=f"default: {KINDS[0].name}"
    )
    _add_output_argument(describe)
    describe.add_argument("job_id", metavar="JOB_ID")

    wait = actions.add_parser("wait", help="wait for an existing refresh job to finish")
    _add_config_argument(wait)
    _add_cluster_argument(wait)
    _add_wait_arguments(wait)
    wait.add_argument("job_id", metavar="JOB_ID")

    refresh = commands.add_parser(
        REFRESH_COMMAND, help="start a refresh of an external collection and print its job id"
    )
    _add_config_argument(refresh)
    _add_cluster_argument(refresh)
    refresh.add_argument("--database", required=True, metavar="D")
    refresh.add_argument("--collection", required=True, metavar="X")
    refresh.add_argument(
        "--external-source",
        metavar="URI|JSON",
        help="new source, sent as given: a URI such as s3://host/bucket/key/ (self-hosted "
        "Milvus) or JSON (Zilliz Cloud); needs --external-spec",
    )
    refresh.add_argument(
        "--external-spec",
        metavar="JSON",
        help='new spec, sent as given (such as {"format":"parquet"}); needs --external-source',
    )
    refresh.add_argument("--wait", action="store_true", help="wait until the refresh finishes")
    _add_wait_arguments(refresh)

    for parser in (listing, describe, wait, refresh):
        # The CLI configures logging for every command; these commands only log errors.
        parser.set_defaults(log_level="error", log_format=None)


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="YAML config file")


def _add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, metavar="C", help="a configured cluster")


def _add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("table", "json"), default="table")


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        metavar="DURATION",
        help=f"stop waiting after this long, exit 3 (default {DEFAULT_WAIT_TIMEOUT})",
    )
    parser.add_argument(
        "--interval",
        metavar="DURATION",
        help=f"time between two looks at the job (default {DEFAULT_WAIT_INTERVAL})",
    )


def job_id(text: str, kind: str) -> str:
    """``JOB_ID`` as the server wants it: the ids of a kind with numeric ids are int64 numbers
    (refresh, restore), the others any text (import: digits on Milvus, ``job-xxxx`` on the
    Zilliz Cloud control plane)."""
    cleaned = text.strip()
    numeric = kind_named(kind).endpoints.numeric_ids
    if numeric and not (
        cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= MAX_INT64_DIGITS
    ):
        others = "; ".join(
            f"for {_article(other.noun)} {other.noun} job add --kind {other.name}"
            for other in KINDS
            if not other.endpoints.numeric_ids
        )
        raise CommandError(
            f"JOB_ID {text!r} is not a {kind_named(kind).noun} job id (a number)"
            + (f"; {others}" if others else ""),
            EXIT_USAGE,
        )
    if not cleaned:
        raise CommandError("JOB_ID is empty", EXIT_USAGE)
    return str(int(cleaned)) if numeric else cleaned


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def duration(text: str | None, default: str, flag: str) -> float:
    """A ``--timeout`` / ``--interval`` value in seconds; longer than zero."""
    try:
        seconds = parse_duration(text if text is not None else default)
    except ValueError as error:
        raise CommandError(f"{flag}: {error}", EXIT_USAGE) from None
    if seconds <= 0:
        raise CommandError(f"{flag}: must be longer than 0s", EXIT_USAGE)
    return seconds


def wait_timing(args: argparse.Namespace) -> tuple[float, float]:
    """(timeout, interval) of ``--timeout`` and ``--interval``, defaults filled in."""
    return (
        duration(args.timeout, DEFAULT_WAIT_TIMEOUT, "--timeout"),
        duration(args.interval, DEFAULT_WAIT_INTERVAL, "--interval"),
    )
