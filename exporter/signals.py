"""Signals handled from the first instruction of ``main`` to the last.

Handlers used to be installed only once the daemon ran, so everything before was Python's
defaults: SIGHUP during start-up (a large state file takes seconds to restore) killed the
process, SIGINT printed a traceback, SIGTERM, SIGUSR1, SIGUSR2 and SIGALRM killed it at once with
no log line. Now ``install`` is the first thing ``python -m exporter`` and the console script do,
before anything heavy is imported (this module imports only the standard library):

- ``SIGTERM`` / ``SIGINT`` while starting raise ``Interrupted`` in the main thread, which ends
  the start-up where it is; nothing has been polled, so nothing is saved and the state file is
  left as it was. Once ``running`` is called they only set ``stop_signal``: the loop stops the
  daemon (which saves the state file one last time) and exits.
- ``SIGHUP`` is counted, never acted on inside the handler: once the daemon runs, the loop
  reloads the config (one reload for any number of hangups during start-up).
- ``SIGUSR1``, ``SIGUSR2`` and ``SIGALRM`` are ignored; the loop logs each (``signal.ignored``).

Handlers run in the main thread between two bytecodes, possibly while that thread holds a lock
(an ``Event``'s, the log queue's), so they only set plain attributes; the loop polls them.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOPPING = (signal.SIGTERM, signal.SIGINT)
IGNORED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
DAEMON_COMMANDS = frozenset({"serve", "demo"})
"""Commands for which a stop signal is the normal way to end: they exit 0. Any other command
stopped by one exits 130, as a shell reports Ctrl-C."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT before the daemon ran (a ``KeyboardInterrupt``, so the operator
    commands' own Ctrl-C handling applies to SIGTERM too)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class Signals:
    """What the handlers recorded, for the main loop to act on."""

    def __init__(self) -> None:
        self.stop_signal: str | None = None
        self.hangups = 0
        self.ignored: list[tuple[str, bool]] = []
        """(signal name, whether it came during start-up), oldest first, until logged."""
        self._running = False

    @property
    def starting(self) -> bool:
        return not self._running

    def running(self) -> None:
        """Start-up is over: stop signals no longer interrupt, they ask the loop to stop."""
        self._running = True

    def take_ignored(self) -> list[tuple[str, bool]]:
        taken, self.ignored = self.ignored, []
        return taken

    def _on_stop(self, number: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(number).name
        if self.stop_signal is None:
            self.stop_signal = name
        if not self._running:
            raise Interrupted(name)

    def _on_hangup(self, number: int, frame: FrameType | None) -> None:
        del number, frame
        self.hangups += 1

    def _on_ignored(self, number: int, frame: FrameType | None) -> None:
        del frame
        if len(self.ignored) < 100:  # a flood of signals must not grow memory
            self.ignored.append((signal.Signals(number).name, not self._running))

    def default_hangup_and_user_signals(self) -> None:
        """Give a one-shot command the usual meaning of a hangup and the user signals back."""
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGHUP, *IGNORED):
                signal.signal(number, signal.SIG_DFL)


_installed: Signals | None = None


def install() -> Signals:
    """Install the handlers (once per process; later calls return the same ``Signals``).

    Only the main thread may install handlers: elsewhere (a test calling ``main`` from a
    worker thread) nothing is installed and the process keeps its own.
    """
    global _installed
    if _installed is not None:
        return _installed
    signals = Signals()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, signals._on_hangup)
        for number in IGNORED:
            signal.signal(number, signals._on_ignored)
        for number in STOPPING:  # last: a caught SIGTERM means every handler is in place
            signal.signal(number, signals._on_stop)
        _installed = signals
    return signals


def interrupted_exit_code(command: str | None) -> int:
    """0 for a daemon stopped while starting, 130 for any other command."""
    return 0 if command in DAEMON_COMMANDS else 130
