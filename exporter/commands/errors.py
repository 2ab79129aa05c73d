"""How an operator command ends: an exit code, and for a problem one line (and hints).

Scripts branch on the code, so each one has a single meaning across every command: 0 ok, 1 a
runtime failure (a target failed, a job failed or was not found, a refresh was refused), 2 a
usage or config error, 3 ``--wait`` timed out, 130 interrupted (Ctrl-C, as shells report it).
"""

from __future__ import annotations

from collections.abc import Sequence

PROGRAM = "milvus-jobs-exporter"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CommandError(Exception):
    """A problem the user can act on: one line, an exit code, and optional hint lines.

    Raised anywhere in a command and printed once, at ``run``, so no command prints half an
    answer and then a traceback.
    """

    def __init__(
        self, message: str, exit_code: int = EXIT_FAILURE, hints: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.hints = tuple(hints)
