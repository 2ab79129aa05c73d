"""Command line: ``serve``, ``check``, ``demo`` and ``simulate``.

Exit codes: 0 ok, 1 runtime failure (a target failed, a port is taken), 2 usage or config error.
A user error prints one clear line per problem to stderr, never a traceback. Signals are handled
from the first instruction of ``main`` (``signals.py``): SIGTERM / SIGINT end ``serve`` and
``demo`` with 0 at any point, start-up included, and any other command with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TextIO

import structlog

from . import __version__
from .commands import COMMANDS as OPERATOR_COMMANDS
from .commands import add_commands as add_operator_commands
from .commands import run as run_operator_command
from .config.loader import (
    DEFAULT_PORT,
    ClusterConfig,
    Config,
    ConfigError,
    load_config,
    parse_shard,
    split_listen_address,
)
from .daemon import Daemon, tune_garbage_collection
from .log import LEVELS, SecretRedactor, configure_logging, flush_logging, logging_configured
from .polling.poller import Poller
from .polling.snapshots import DiscoveryOutcome
from .signals import DAEMON_COMMANDS, Interrupted, Signals, interrupted_exit_code
from .signals import install as install_signal_handlers
from .web.server import ExporterHTTPServer, ServerLimits, serve_in_thread
from .web.webconfig import WebConfig, WebConfigError, load_web_config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROGRAM = "milvus-jobs-exporter"
SIGNAL_CHECK_SECONDS = 0.1
"""How often the serving loop looks at what the signal handlers recorded."""

log = structlog.get_logger("exporter.cli")


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Prometheus exporter for Milvus / Zilliz Cloud refresh and import jobs.",
    )
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the exporter daemon")
    serve.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="overrides listen_address from the config"
    )
    _add_web_arguments(serve)
    serve.add_argument(
        "--shard",
        metavar="INDEX/COUNT",
        help="poll only this replica's share of the targets, e.g. 0/4 (overrides shard:)",
    )
    _add_logging_arguments(serve)

    check = commands.add_parser("check", help="validate the config and poll every target once")
    check.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    _add_logging_arguments(check, default_level="error")

    demo = commands.add_parser(
        "demo", help="run the built-in simulator and the exporter against it"
    )
    demo.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT")
    demo.add_argument("--seed", type=int, default=42, help="simulator seed")
    from .simulator import add_flavor_argument

    add_flavor_argument(demo)
    _add_web_arguments(demo)
    _add_logging_arguments(demo)

    simulate = commands.add_parser("simulate", help="run the upstream API simulator alone")
    from .simulator import add_arguments as add_simulator_arguments

    add_simulator_arguments(simulate)
    add_operator_commands(commands)  # jobs list|describe|wait, refresh
    return parser


def _add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS and basic auth for the HTTP server, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive_int,
        default=ServerLimits.max_connections,
        metavar="N",
        help="connections served at once; above it the longest-waiting one is closed, or the "
        "newcomer gets 503 when all are busy (default: %(default)s)",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="allow POST /-/reload (off by default, as in Prometheus; SIGHUP always reloads)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _load_web_config(path: str | None) -> WebConfig | None:
    if not path:
        return None
    web_config = load_web_config(path)
    for warning in web_config.warnings:
        log.warning("web_config.warning", warning=warning)
    return web_config


def _add_logging_arguments(parser: argparse.ArgumentParser, default_level: str = "info") -> None:
    parser.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=None,
        help="default: console on a terminal, else json",
    )
    parser.add_argument("--log-level", choices=LEVELS, default=default_level)


def main(argv: Sequence[str] | None = None) -> int:
    signals = install_signal_handlers()  # first: a signal during start-up is handled too
    command: str | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        if command not in DAEMON_COMMANDS:
            signals.default_hangup_and_user_signals()
        return _run(parser, args, signals)
    except Interrupted as interrupted:
        return _interrupted(command, interrupted.signal_name)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, signals: Signals) -> int:
    try:
        if args.command == "simulate":
            return run_simulate(args)
        redactor = configure_logging(args.log_level, args.log_format or "auto")
        if args.command == "serve":
            return run_serve(args, redactor, signals)
        if args.command == "check":
            return run_check(args, sys.stdout, redactor)
        if args.command == "demo":
            return run_demo(args, redactor, signals)
        if args.command in OPERATOR_COMMANDS:
            return run_operator_command(args, redactor=redactor)
    except ConfigError as error:
        for line in str(error).splitlines():
            _say_error(f"config error: {line}")
        return EXIT_USAGE
    except WebConfigError as error:
        for line in str(error).splitlines():
            _say_error(f"web config error: {line}")
        return EXIT_USAGE
    except UserError as error:
        _say_error(str(error))
        return error.exit_code
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


def _interrupted(command: str | None, signal_name: str) -> int:
    """A stop signal before the daemon ran: one log line (or one line on stderr), no traceback."""
    code = interrupted_exit_code(command)
    if command in DAEMON_COMMANDS and logging_configured():
        log.info("exporter.stopping", signal=signal_name, during="start-up")
        log.info("exporter.stopped")
        flush_logging()
    elif command in DAEMON_COMMANDS:
        _say_error(f"stopped by {signal_name} while starting")
    else:
        _say_error("interrupted")
    return code


def _say_error(line: str) -> None:
    """One line on stderr, if there is a stderr to take it (it may be closed or a dead pipe)."""
    try:
        if sys.stderr is not None:
            print(f"{PROGRAM}: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def run_serve(args: argparse.Namespace, redactor: SecretRedactor, signals: Signals) -> int:
    shard: tuple[int, int] | None = None
    if args.shard is not None:  # "" is a mistake (an unset variable), not "unsharded"
        try:
            shard = parse_shard(args.shard)
        except ValueError as error:
            raise UserError(f"--shard: {error}", EXIT_USAGE) from None

    def load(path: str) -> Config:
        """The config file, with --shard (if given) winning over its shard key, on reload too."""
        config = load_config(path)
        if shard is not None:
            config = replace(config, shard_index=shard[0], shard_count=shard[1])
        return config

    config = load(args.config)
    web_config = _load_web_config(args.web_config_file)
    return _serve(
        config,
        args.listen or config.listen_address,
        redactor,
        signals,
        web_config=web_config,
        config_loader=load,
        limits=ServerLimits(max_connections=args.max_connections),
        enable_lifecycle=args.enable_lifecycle,
    )


def _serve(
    config: Config,
    listen: str,
    redactor: SecretRedactor,
    signals: Signals,
    announce: str | None = None,
    web_config: WebConfig | None = None,
    config_loader: Callable[[str], Config] = load_config,
    limits: ServerLimits | None = None,
    enable_lifecycle: bool = False,
) -> int:
    """Run the daemon and its HTTP server until SIGTERM / SIGINT.

    A stop signal before ``signals.running()`` raises ``Interrupted`` out of here (nothing has
    been polled yet: the listening socket is closed, nothing is saved); after it, the loop
    below sees it, stops the daemon (final state save) and returns 0.
    """
    for warning in config.warnings:
        log.warning("config.warning", warning=warning)
    daemon = Daemon(config, config_loader=config_loader, redactor=redactor)
    tune_garbage_collection()
    server = _bind(listen, daemon, web_config, limits, enable_lifecycle)
    try:
        signals.running()
    except Interrupted:
        server.server_close()
        raise
    serve_in_thread(server)
    log.info(
        "exporter.started",
        version=__version__,
        url=server.url,
        targets=len(daemon.poller.targets),
        config=config.source,
    )
    if announce:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout may be gone
            print(announce.format(url=server.url), flush=True)
    daemon.start()
    hangups_handled = 0
    while signals.stop_signal is None:
        _log_ignored_signals(signals)
        if signals.hangups != hangups_handled:
            hangups_handled = signals.hangups
            daemon.request_reload()
        time.sleep(SIGNAL_CHECK_SECONDS)
    log.info("exporter.stopping", signal=signals.stop_signal)
    daemon.stop()
    server.shutdown()
    server.server_close()
    _log_ignored_signals(signals)
    log.info("exporter.stopped")
    flush_logging()
    return EXIT_OK


def _log_ignored_signals(signals: Signals) -> None:
    for name, starting in signals.take_ignored():
        log.info("signal.ignored", signal=name, during="start-up" if starting else "running")


def _parse_listen(listen: str) -> tuple[str, int]:
    try:
        host, port = split_listen_address(listen)
    except ValueError:
        raise UserError(f"--listen {listen!r}: expected HOST:PORT", EXIT_USAGE) from None
    if not 0 <= port <= 65535:
        raise UserError(f"--listen {listen!r}: port out of range", EXIT_USAGE)
    return host, port


def _bind(
    listen: str,
    daemon: Daemon,
    web_config: WebConfig | None,
    limits: ServerLimits | None,
    enable_lifecycle: bool,
) -> ExporterHTTPServer:
    host, port = _parse_listen(listen)
    try:
        return ExporterHTTPServer(
            (host, port),
            lambda: daemon,
            web_config,
            limits=limits,
            enable_lifecycle=enable_lifecycle,
        )
    except OSError as error:
        raise UserError(f"cannot listen on {listen}: {error.strerror or error}") from None


def run_check(args: argparse.Namespace, out: TextIO, redactor: SecretRedactor | None = None) -> int:
    """Poll every target once and print a table; exit 1 if any target failed."""
    config = load_config(args.config)
    if redactor is not None:
        redactor.set_secrets(config.secrets)
    poller = Poller(config, list_collections=False)
    try:
        cycle = poller.poll_cycle()
        reported = {snapshot.target.key: snapshot for snapshot in cycle.snapshots}
        discoveries = list(cycle.discoveries)
        if cycle.targets_changed:  # a pattern found databases: poll those too
            more = poller.poll_cycle()
            reported.update({snapshot.target.key: snapshot for snapshot in more.snapshots})
            discoveries += more.discoveries
    finally:
        poller.close()
    failed = _write_discoveries(config, discoveries, out)
    rows = [("CLUSTER", "DATABASE", "KIND", "STATUS", "JOBS", "LATENCY")]
    for target in poller.targets:
        cluster, database, kind = target.key
        snapshot = reported.get(target.key)
        if snapshot is None:  # late: still running or queued when the round ended
            failed += 1
            status = f"error: deadline (no answer within {poller.poll_budget:g}s)"
            rows.append((cluster, database, kind, status, "-", "-"))
            continue
        if snapshot.ok:
            status, jobs = "ok", str(len(snapshot.jobs))
            skipped = sum(count for _reason, count, _message in snapshot.skipped_records)
            if skipped:
                status += f" ({skipped} unreadable records skipped)"
        else:
            failed += 1
            status, jobs = f"error: {snapshot.reason} ({snapshot.message})", "-"
        rows.append((cluster, database, kind, status, jobs, f"{snapshot.seconds * 1000:.0f}ms"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        out.write("  ".join(cells).rstrip() + "\n")
    failed_targets = failed - len([d for d in discoveries if not d.ok])
    out.write(f"{len(poller.targets) - failed_targets} of {len(poller.targets)} targets ok\n")
    return EXIT_FAILURE if failed else EXIT_OK


def _write_discoveries(config: Config, discoveries: list[DiscoveryOutcome], out: TextIO) -> int:
    """One line per database pattern: what it matched; return how many discoveries failed."""
    failed = 0
    for outcome in discoveries:
        cluster = next(c for c in config.clusters if c.name == outcome.cluster)
        if not outcome.ok:
            failed += 1
            out.write(
                f"{cluster.name}: databases/list failed: {outcome.reason} ({outcome.message}); "
                f"patterns {', '.join(map(repr, cluster.database_patterns))} matched nothing\n"
            )
            continue
        for pattern in cluster.database_patterns:
            matched = [db for db in outcome.matched if fnmatch.fnmatchcase(db, pattern)]
            shown = ", ".join(matched) if matched else "no database"
            out.write(f"{cluster.name}: pattern {pattern!r} matched {shown}\n")
        if cluster.exclude_databases:
            out.write(
                f"{cluster.name}: excluded {', '.join(map(repr, cluster.exclude_databases))}\n"
            )
    return failed


def run_demo(args: argparse.Namespace, redactor: SecretRedactor, signals: Signals) -> int:
    """Start the simulator in-process and the exporter against it: no config needed."""
    from .simulator import Simulator, SimulatorOptions

    tokens = ("demo-prod-token", "demo-staging-token")
    simulator = Simulator(
        SimulatorOptions(
            seed=args.seed,
            flavor=args.flavor,
            tokens=tokens,
            databases=("default", "analytics"),
            collections_per_database=4,
            time_scale=20.0,
        )
    )
    with simulator.serve("127.0.0.1", 0) as upstream:
        config = Config(
            clusters=(
                ClusterConfig(  # every database, found by discovery: add one and watch it appear
                    name="demo-prod",
                    endpoint=upstream.url,
                    token=tokens[0],
                    databases=("*",),
                    discovery_interval=30.0,
                ),
                ClusterConfig(
                    name="demo-staging",
                    endpoint=upstream.url,
                    token=tokens[1],
                    databases=("default",),
                ),
            ),
            listen_address=args.listen,
            poll_interval=5.0,
            request_timeout=5.0,
            source="<demo>",
        )
        announce = (
            f"Demo: simulated Milvus at {upstream.url}; metrics at {{url}}/metrics "
            "(landing page {url}/). demo-prod polls every database it finds: add one with "
            f'curl -X POST {upstream.url}/_simulator/databases -d \'{{{{"name": "sales"}}}}\' '
            "and it appears within 30s. Press Ctrl-C to stop."
        )
        web_config = _load_web_config(args.web_config_file)
        return _serve(
            config,
            args.listen,
            redactor,
            signals,
            announce=announce,
            web_config=web_config,
            limits=ServerLimits(max_connections=args.max_connections),
            enable_lifecycle=args.enable_lifecycle,
        )


def run_simulate(args: argparse.Namespace) -> int:
    from .simulator import options_from_args, run_forever

    host, port = _parse_listen(args.listen)
    try:
        run_forever(options_from_args(args), host, port)
    except OSError as error:
        raise UserError(f"cannot listen on {args.listen}: {error.strerror or error}") from None
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
