"""Command-line wiring for `milvus-jobs-exporter simulate`: flags in, options out, serve.

The exporter's CLI owns the sub-command; it calls `add_arguments` on its sub-parser, then
`options_from_args` and `run_forever(options, *listen_address(args))`.

`--flavor` picks the server imitated; `--rate-limit-style`, `--rate-limit-scope`, `--utc-offset`
and `--import-paging` default to what the flavour does and override it when given. Every knob a
job kind declares (`kinds/`) is a flag too (`restore_outcome` is `--restore-outcome`), added
here from the registry: a new kind's knobs need no line in this module.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .core import Simulator
from .kinds import KINDS
from .kinds.knobs import Knob
from .options import (
    FLAVORS,
    MAX_UTC_OFFSET_MINUTES,
    RATE_LIMIT_SCOPES,
    RATE_LIMIT_STYLES,
    SimulatorOptions,
)

DEFAULT_LISTEN = "127.0.0.1:19530"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags (including --listen) to an existing (sub-)parser."""
    defaults = SimulatorOptions()
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="world seed")
    add_flavor_argument(parser)
    parser.add_argument(
        "--databases",
        type=_names,
        default=defaults.databases,
        help="comma-separated database names (default: default,analytics)",
    )
    parser.add_argument(
        "--collections",
        type=_non_negative_int,
        default=defaults.collections_per_database,
        help="external collections per database",
    )
    parser.add_argument(
        "--refresh-jobs",
        type=_non_negative_int,
        default=defaults.refresh_jobs_per_collection,
        help="refresh jobs of history per collection",
    )
    parser.add_argument(
        "--import-jobs",
        type=_non_negative_int,
        default=defaults.import_jobs_per_database,
        help="import jobs per database",
    )
    parser.add_argument(
        "--dropped-collections",
        type=_names,
        default=defaults.dropped_collections,
        metavar="DB/NAME,...",
        help="collections dropped from the start: gone from collections/list, jobs still listed",
    )
    parser.add_argument(
        "--tokens",
        type=_names,
        default=defaults.tokens,
        help="comma-separated accepted bearer tokens (API keys or user:password)",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        default=defaults.time_scale,
        help="simulated seconds per real second",
    )
    parser.add_argument(
        "--latency",
        type=_non_negative_float,
        default=defaults.latency_seconds,
        help="seconds added before each API answer",
    )
    parser.add_argument(
        "--requests-per-second",
        type=_non_negative_int,
        default=defaults.requests_per_second,
        help="limit per token and endpoint; 0 turns it off",
    )
    parser.add_argument(
        "--rate-limit-style",
        choices=RATE_LIMIT_STYLES,
        default=None,
        help="how a rate-limited request is answered (default: the flavour's; zilliz http_429, "
        "milvus code_1807)",
    )
    parser.add_argument(
        "--rate-limit-scope",
        choices=RATE_LIMIT_SCOPES,
        default=None,
        help="which endpoints are limited (default: the flavour's; zilliz every_endpoint, "
        "milvus refresh_trigger)",
    )
    parser.add_argument(
        "--utc-offset",
        type=_utc_offset,
        default=None,
        metavar="+HH:MM",
        help="offset of the RFC 3339 import times (default: the flavour's; zilliz Z, milvus +08:00)",
    )
    parser.add_argument(
        "--import-paging",
        action="store_true",
        help="answer import/list in the Zilliz Cloud paged form",
    )
    parser.add_argument(
        "--legacy-success-code",
        action="store_true",
        help='answer success with "code": 200 like older Milvus',
    )
    parser.add_argument(
        "--no-auto-refresh",
        dest="auto_refresh",
        action="store_false",
        help="only start jobs when asked",
    )
    parser.add_argument(
        "--failure-probability",
        type=_probability,
        default=defaults.failure_probability,
        help="share of automatic jobs that fail",
    )
    parser.add_argument(
        "--hang-probability",
        type=_probability,
        default=defaults.hang_probability,
        help="share of automatic refresh jobs that never finish",
    )
    parser.add_argument(
        "--manual-commit-probability",
        type=_probability,
        default=defaults.manual_commit_probability,
        help="share of successful imports created with auto-commit off (Uncommitted, Committing)",
    )
    for knob in KINDS.knobs():
        _add_knob(parser, knob)


def _add_knob(parser: argparse.ArgumentParser, knob: Knob) -> None:
    """A declared knob as a flag; unset flags leave the knob at its declared default."""
    shown = f" (default {knob.default})" if knob.default not in ("", ()) else ""
    if knob.switch:
        parser.add_argument(
            knob.flag, dest=knob.name, action="store_const", const=True, help=knob.help
        )
        return

    def parse(word: str) -> object:
        try:
            return knob.parse(word)
        except ValueError as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None

    parse.__name__ = knob.name
    parser.add_argument(knob.flag, dest=knob.name, type=parse, help=knob.help + shown)


def add_flavor_argument(parser: argparse.ArgumentParser) -> None:
    """`--flavor`, shared with `demo`: which real server the simulator imitates."""
    parser.add_argument(
        "--flavor",
        choices=FLAVORS,
        default=SimulatorOptions().flavor,
        help="imitate Zilliz Cloud (zilliz, the default) or a self-hosted Milvus (milvus)",
    )


def options_from_args(args: argparse.Namespace) -> SimulatorOptions:
    return SimulatorOptions(
        seed=args.seed,
        flavor=args.flavor,
        tokens=tuple(args.tokens),
        databases=tuple(args.databases),
        collections_per_database=args.collections,
        refresh_jobs_per_collection=args.refresh_jobs,
        import_jobs_per_database=args.import_jobs,
        dropped_collections=tuple(args.dropped_collections),
        time_scale=args.time_scale,
        latency_seconds=args.latency,
        requests_per_second=args.requests_per_second or None,
        rate_limit_style=args.rate_limit_style,
        rate_limit_scope=args.rate_limit_scope,
        utc_offset_minutes=args.utc_offset,
        legacy_success_code=args.legacy_success_code,
        import_paging=args.import_paging,
        auto_refresh=args.auto_refresh,
        failure_probability=args.failure_probability,
        hang_probability=args.hang_probability,
        manual_commit_probability=args.manual_commit_probability,
        knobs={
            knob.name: getattr(args, knob.name)
            for knob in KINDS.knobs()
            if getattr(args, knob.name, None) is not None
        },
    )


def listen_address(args: argparse.Namespace) -> tuple[str, int]:
    return parse_listen(args.listen)


def parse_listen(value: str) -> tuple[str, int]:
    """Split HOST:PORT: `[::1]:0` gives ("::1", 0) and `:8080` listens on every interface."""
    host, separator, port = value.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def run_forever(options: SimulatorOptions, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM, after printing where and with which tokens."""
    stop = threading.Event()
    installed, previous = _on_sigterm(stop)
    server = Simulator(options).serve(host, port)
    try:
        tokens = ", ".join(options.tokens)
        print(f"simulator listening on {server.url} tokens: {tokens}", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        if installed:
            signal.signal(signal.SIGTERM, previous)


_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def _on_sigterm(stop: threading.Event) -> tuple[bool, _SignalHandler]:
    """Turn SIGTERM into a clean stop; only the main thread may install signal handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return False, None
    try:
        return True, signal.signal(signal.SIGTERM, handler)
    except ValueError:
        print("simulator: cannot install a SIGTERM handler here", file=sys.stderr)
        return False, None


def _utc_offset(value: str) -> int:
    """Minutes east of UTC from "+08:00", "-05:30", "+0800" or "Z"."""
    text = value.strip()
    if text.upper() in ("Z", "UTC"):
        return 0
    sign = {"+": 1, "-": -1}.get(text[:1])
    digits = text[1:].replace(":", "")
    if sign is None or len(digits) != 4 or not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError("expected +HH:MM, -HH:MM or Z")
    hours, minutes = int(digits[:2]), int(digits[2:])
    total = sign * (hours * 60 + minutes)
    if minutes >= 60 or abs(total) > MAX_UTC_OFFSET_MINUTES:
        raise argparse.ArgumentTypeError("must be a real offset, within 14 hours of UTC")
    return total


def _names(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected at least one comma-separated name")
    return names


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _probability(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number
