"""How the operator commands look in a terminal: tables, colours, times, the progress bar.

Everything a command prints goes through a ``Console``, which keeps results (stdout) apart from
problems (stderr) and scrubs every token from both, so no path through a command can print a
secret. Colour and redrawing in place happen only on a terminal; a pipe, a CI log or ``| tee``
gets plain lines that read the same a day later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TextIO

from ..guards.redact import redact
from ..kinds import KINDS
from ..kinds.view import (
    both_times,
    local_time,
    number,
    percent,
    percent_text,
    rfc3339,
    rounded,
    short_duration,
    size,
    trim,
)
from ..upstream.client import ApiError
from ..upstream.records import RefreshJob
from .errors import PROGRAM

__all__ = [
    "Console",
    "both_times",
    "explain",
    "local_time",
    "number",
    "percent",
    "percent_text",
    "rfc3339",
    "rounded",
    "short_duration",
    "size",
    "trim",
]

BAR_REDRAW_SECONDS = 0.25
REASON_COLUMN_WIDTH = 60


def state_group(state: str) -> str:
    """A known state's kind-neutral group (``pending``, ``running``, ``completed``,
    ``failed``; "" for none): what ``--state`` accepts besides the state itself, and its colour.
    Read from the kinds' declared states."""
    for kind in KINDS:
        group = kind.states.group(state)
        if group:
            return group
    return ""


GROUP_COLOURS = {"failed": "31", "completed": "32", "running": "33"}


class Console:
    """stdout for results, stderr for problems; every token scrubbed from both."""

    def __init__(self, out: TextIO, err: TextIO, environ: Mapping[str, str]) -> None:
        self.out = out
        self.err = err
        self.environ = environ
        self.secrets: tuple[str, ...] = ()

    @property
    def tty(self) -> bool:
        try:
            return self.out.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def colour(self) -> bool:
        """ANSI colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
        return self.tty and not self.environ.get("NO_COLOR") and self.environ.get("TERM") != "dumb"

    @property
    def unicode(self) -> bool:
        encoding = (getattr(self.out, "encoding", None) or "").lower().replace("-", "")
        return encoding == "utf8"

    def width(self) -> int:
        columns = self.environ.get("COLUMNS", "")
        if columns.isascii() and columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(self.out.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            return 80

    def paint(self, text: str, state: str) -> str:
        code = GROUP_COLOURS.get(state_group(state))
        if not code or not self.colour:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def write(self, text: str) -> None:
        self.out.write(redact(text, *self.secrets))
        self.out.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def problem(self, text: str) -> None:
        self.err.write(f"{PROGRAM}: {redact(text, *self.secrets)}\n")
        self.err.flush()


# -- values as people read them ----------------------------------------------------------------


def explain(error: ApiError) -> str:
    """``auth (HTTP 401: the token was refused)``: the bounded reason, then the server's words."""
    return f"{error.reason} ({error.message})"


# -- layouts -------------------------------------------------------------------------------------


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    paint: Callable[[int, str], str] = lambda column, text: text,
) -> list[str]:
    """Left-aligned columns two spaces apart; ``paint`` may colour a cell after padding."""
    widths = [len(title) for title in header]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(title.ljust(width) for title, width in zip(header, widths, strict=True)).rstrip()
    ]
    for row in rows:
        cells = []
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padding = " " * (width - len(cell)) if column < len(row) - 1 else ""
            cells.append(paint(column, cell) + padding)
        lines.append("  ".join(cells).rstrip())
    return lines


def show_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    """``Name:  value`` lines with the values aligned, as ``jobs describe`` shows a job."""
    width = max(len(name) for name, _ in fields) + 2
    for name, text in fields:
        console.line(f"{name + ':':<{width}}{text}")


# -- progress while waiting ----------------------------------------------------------------------


class ProgressView(Protocol):
    """How waiting looks: a bar redrawn in place on a terminal, plain lines elsewhere."""

    redraw_seconds: float

    def update(self, job: RefreshJob, elapsed: float) -> None: ...

    def problem(self, error: ApiError, elapsed: float) -> None: ...

    def tick(self, elapsed: float) -> None: ...

    def close(self) -> None: ...


class ProgressLines:
    """One line per change of state or progress, for pipes, CI logs and ``| tee``.

    2026-11-23T10:00:05Z job 449503829274509301 RefreshInProgress 42% elapsed 1m05s
    """

    redraw_seconds = float("inf")

    def __init__(
        self, console: Console, job_id: int, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._console = console
        self._job_id = job_id
        self._wall_clock = wall_clock
        self._last: tuple[str, str] | None = None
        self._last_problem = ""

    def update(self, job: RefreshJob, elapsed: float) -> None:
        self._last_problem = ""
        shown = (job.state, percent_text(job.progress_ratio))
        if shown == self._last:
            return
        self._last = shown
        self._say(f"{shown[0]} {shown[1]} elapsed {short_duration(elapsed)}")

    def problem(self, error: ApiError, elapsed: float) -> None:
        if error.reason == self._last_problem:
            return
        self._last_problem = error.reason
        self._say(f"describe failed: {explain(error)}; still waiting")

    def tick(self, elapsed: float) -> None:
        del elapsed

    def close(self) -> None:
        pass

    def _say(self, text: str) -> None:
        self._console.line(f"{rfc3339(self._wall_clock())} job {self._job_id} {text}")


class ProgressBar:
    """A one-line bar redrawn in place with ``\\r``, sized to the terminal at every draw.

    job 449503829274509301 [████████░░░░░░░░░░░░]  42%  RefreshInProgress  elapsed 1m05s
    """

    redraw_seconds = BAR_REDRAW_SECONDS

    def __init__(self, console: Console, job_id: int) -> None:
        self._console = console
        self._job_id = job_id
        self._job: RefreshJob | None = None
        self._note = ""
        self._drawn = False

    def update(self, job: RefreshJob, elapsed: float) -> None:
        self._job, self._note = job, ""
        self._draw(elapsed)

    def problem(self, error: ApiError, elapsed: float) -> None:
        self._note = f"last look failed: {error.reason}"
        self._draw(elapsed)

    def tick(self, elapsed: float) -> None:
        self._draw(elapsed)

    def close(self) -> None:
        if self._drawn:
            self._console.write("\n")
            self._drawn = False

    def _draw(self, elapsed: float) -> None:
        width = max(20, self._console.width() - 1)  # the last column would wrap on some terminals
        job = self._job
        state = job.state if job else "waiting"
        ratio = job.progress_ratio if job else 0.0
        label = f"job {self._job_id} "
        tail = f" {percent_text(ratio):>4}  {state}  elapsed {short_duration(elapsed)}"
        if self._note:
            tail += f"  ({self._note})"
        # The bar is sized for the longest tail a running job shows, so it keeps its length
        # while the state and the elapsed time change under it.
        reserved = max(len(tail), len(" 100%  RefreshInProgress  elapsed 59m59s"))
        room = width - len(label) - reserved - 2
        if room < 10:
            label, room = "", width - reserved - 2
        bar = ""
        if room >= 10:
            room = min(room, 40)
            full, empty = ("█", "░") if self._console.unicode else ("#", "-")
            filled = int(room * min(max(ratio, 0.0), 1.0))
            bar = "[" + full * filled + empty * (room - filled) + "]"
        plain = label + bar + tail
        if len(plain) > width:
            text = plain[:width]
        else:
            text = label + bar + tail.replace(state, self._console.paint(state, state), 1)
        self._console.write("\r" + text + ("\x1b[K" if self._console.tty else ""))
        self._drawn = True
