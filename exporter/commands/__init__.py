"""Operator commands: look at jobs and start refreshes from a shell, with the daemon's config.

    milvus-jobs-exporter jobs list --config config.yaml --state failed
    milvus-jobs-exporter jobs describe --config config.yaml --cluster prod 449503829274509301
    milvus-jobs-exporter refresh --config config.yaml --cluster prod --database default \\
        --collection ext_books --wait
    milvus-jobs-exporter jobs wait --config config.yaml --cluster prod 449503829274509301

They read the same config file and credentials as ``serve`` and reach the clusters the way the
daemon does (``upstream.py``: its sessions, TLS rule, client, rate limiter and retry policy), and
read every answer with the daemon's parsers. Results go to stdout (a table, or JSON for
scripts); problems go to stderr as one line each, with every token scrubbed. Exit codes are in
``errors.py``: 0 ok, 1 a runtime failure, 2 a usage or config error, 3 ``--wait`` timed out,
130 interrupted.

One module per command (``jobs_list``, ``jobs_describe``, ``jobs_wait``, ``refresh``), the
flags in ``arguments``, the terminal output in ``terminal``. ``cli.py`` needs only the three
names below.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from ..config.loader import Config, load_config
from ..log import SecretRedactor
from .arguments import REFRESH_COMMAND, add_commands
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, CommandError
from .jobs_describe import describe_request, run_describe
from .jobs_list import list_request, run_list
from .jobs_wait import run_wait, wait_request
from .refresh import refresh_request, run_refresh
from .terminal import Console
from .upstream import Upstream

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = ("jobs", REFRESH_COMMAND)

Command = Callable[[Config, Upstream, Console], int]


def run(
    args: argparse.Namespace,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    redactor: SecretRedactor | None = None,
) -> int:
    """Run one operator command; every user error ends here as lines on stderr and a code.

    A ``ConfigError`` is left to the CLI, which prints it the same way for every command.
    """
    console = Console(
        stdout or sys.stdout, stderr or sys.stderr, os.environ if environ is None else environ
    )
    try:
        command = _parse_command(args)
        config = load_config(args.config)
        console.secrets = config.secrets
        if redactor is not None:
            redactor.set_secrets(config.secrets)
        upstream = Upstream(config)
        try:
            return command(config, upstream, console)
        finally:
            upstream.close()
    except CommandError as error:
        console.problem(str(error))
        for hint in error.hints:
            console.problem(hint)
        return error.exit_code
    except KeyboardInterrupt:
        console.problem("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (``| head``) has gone: stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def _parse_command(args: argparse.Namespace) -> Command:
    """Check the arguments that need no config, and pick the command: nothing is sent yet."""
    if args.command == REFRESH_COMMAND:
        refresh = refresh_request(args)
        return lambda config, upstream, console: run_refresh(refresh, config, upstream, console)
    if args.jobs_command == "list":
        listing = list_request(args)
        return lambda config, upstream, console: run_list(listing, config, upstream, console)
    if args.jobs_command == "describe":
        described = describe_request(args)
        return lambda config, upstream, console: run_describe(described, config, upstream, console)
    watched = wait_request(args)
    return lambda config, upstream, console: run_wait(watched, config, upstream, console)
