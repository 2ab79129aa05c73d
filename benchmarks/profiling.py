"""Optional py-spy recording of the exporter process while a benchmark phase runs.

``python -m benchmarks.scrape --profile DIR`` attaches ``py-spy record`` (``pip install py-spy``)
to the exporter during its first poll cycle and during the scrapes, writes the collapsed stacks
to ``DIR/<phase>.txt`` (feed them to any flamegraph tool) and prints the functions with the most
samples: *self* is time in the function's own code, *total* includes what it calls.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

SAMPLES_PER_SECOND = 250
PLUMBING = ("threading.py", "concurrent/futures/thread.py", "socketserver.py")
"""Thread start-up frames under everything: left out of the *total* ranking, which they top."""


class Profiler:
    """``native`` adds the C frames (``py-spy --native``): the garbage collector shows as
    ``gc_collect_main`` instead of as time in whichever Python function allocated."""

    def __init__(self, directory: str | Path, native: bool = False) -> None:
        self.directory = Path(directory)
        self.native = native
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pid: int | None = None
        self.phases: list[tuple[str, float, bool]] = []
        """(phase, wall seconds, GIL-only)"""
        self._py_spy = find_py_spy()
        if self._py_spy is None:
            raise RuntimeError("--profile needs py-spy: pip install py-spy")

    def attach(self, pid: int) -> None:
        self.pid = pid

    @contextlib.contextmanager
    def record(self, phase: str, gil_only: bool = False) -> Iterator[None]:
        """Record ``phase``; ``gil_only`` keeps only samples of the thread holding the GIL, which
        is where a busy Python process spends its CPU (idle pool workers drop out)."""
        assert self._py_spy is not None and self.pid is not None
        output = self.directory / f"{phase}.txt"
        command = [self._py_spy, "record", "--pid", str(self.pid), "--format", "raw"]
        command += ["--rate", str(SAMPLES_PER_SECOND), "--output", str(output)]
        if gil_only:
            command.append("--gil")
        if self.native:
            command.append("--native")
        recorder = _start(command)
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            recorder.wait(timeout=60)
            self.phases.append((phase, seconds, gil_only))

    def print_summaries(self, top: int = 12) -> None:
        for phase, seconds, gil_only in self.phases:
            path = self.directory / f"{phase}.txt"
            if path.exists():
                print(summary(path, phase, seconds, gil_only, top))


def find_py_spy() -> str | None:
    """py-spy on PATH, or beside this Python (a venv's bin is not on PATH when the venv's
    python is run by its path)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


_THREAD = re.compile(r'^Thread (\d+) \([a-z]+\)(?:: "(.*)")?', re.MULTILINE)


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from one ``py-spy dump`` (empty without py-spy)."""
    py_spy = find_py_spy()
    if py_spy is None:
        return {}
    try:
        dumped = subprocess.run(
            [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(tid): name or "" for tid, name in _THREAD.findall(dumped.stdout)}


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    """Start py-spy; retry while the target is too young for it to find the interpreter."""
    for _ in range(20):
        recorder = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(0.2)
        if recorder.poll() is None:
            return recorder
    raise RuntimeError(f"py-spy could not attach: {' '.join(command)}")


def _function(frame: str) -> str:
    """``render (exporter/exposition/families.py:42)`` -> ``render (exporter/exposition/families.py)``."""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if "/exporter/" in path:
        path = "exporter/" + path.split("/exporter/", 1)[1]
    return f"{name} ({path})" if path else name


def summary(path: Path, phase: str, seconds: float, gil_only: bool, top: int = 12) -> str:
    """The ``top`` functions by self and by total samples, as percentages of all samples."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";") if " (" in frame]
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        for function in set(frames):
            if not function.endswith(tuple(f"({path})" for path in PLUMBING)):
                total_samples[function] += count
    what = "samples holding the GIL" if gil_only else "samples of running threads"
    share = 100.0 * samples / max(seconds * SAMPLES_PER_SECOND, 1)
    lines = [
        f"profile of the exporter, {phase} ({seconds:.2f} s): {samples} {what} "
        f"at {SAMPLES_PER_SECOND}/s ({share:.0f}% of the phase's wall time)"
    ]
    for title, counter in (("self", self_samples), ("total", total_samples)):
        lines.append(f"   top {top} by {title} time:")
        for function, count in counter.most_common(top):
            lines.append(f"   {100.0 * count / max(samples, 1):6.1f}%  {function}")
    return "\n".join(lines)


LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("garbage collection", ("gc_collect", "gcmodule")),
    ("exposition", ("exporter/exposition/cache.py", "gzip.py", "zlib")),
    ("series rendering", ("exporter/metrics/series.py", "exporter/exposition/families.py")),
    ("model", ("exporter/metrics/", "exporter/memory/")),
    ("kept/caps", ("exporter/polling/kept.py", "exporter/polling/describes.py")),
    ("parsing", ("exporter/upstream/records.py", "json/", "exporter/upstream/client.py")),
    (
        "HTTP",
        (
            "exporter/upstream/transport.py",
            "exporter/guards/",
            "requests/",
            "urllib3/",
            "http/client.py",
            "socket.py",
            "ssl.py",
            "email/",
        ),
    ),
    ("scheduling", ("exporter/polling/", "exporter/upstream/ratelimit.py", "concurrent/")),
    ("web (scrapes)", ("exporter/web/", "socketserver.py", "http/server.py")),
    ("logging", ("structlog/", "exporter/log.py", "logging/")),
    ("daemon", ("exporter/daemon.py", "exporter/cli.py")),
)
"""Where a sample's time belongs: the layer of its innermost frame that names one (the stack
read from the leaf up), so ``json`` decoding called by the client counts as parsing and
``socket`` reads as HTTP. Earlier rows win when one frame matches two."""


def _layer_of(frame: str) -> str | None:
    for layer, markers in LAYERS:
        if any(marker in frame for marker in markers):
            return layer
    return None


def layer_shares(path: Path) -> dict[str, float]:
    """Percent of the samples in a raw py-spy file spent in each layer, largest first."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        layer = "other"
        for frame in reversed(stack.split(";")):
            found = _layer_of(_function(frame))
            if found is not None:
                layer = found
                break
        counts[layer] += int(count_text)
    total = sum(counts.values()) or 1
    return {layer: round(100.0 * count / total, 1) for layer, count in counts.most_common()}
