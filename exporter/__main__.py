"""``python -m exporter`` runs the same command line as ``milvus-jobs-exporter``.

Both start here, so the signal handlers are in place before anything heavy is imported: a
SIGHUP or SIGTERM during the second or so that the imports take is handled like one later.
"""

import sys

from .signals import Interrupted, install, interrupted_exit_code


def main() -> int:
    install()
    try:
        from .cli import main as run
    except Interrupted as interrupted:  # during the imports: nothing has started yet
        command = sys.argv[1] if len(sys.argv) > 1 else None
        print(
            f"milvus-jobs-exporter: stopped by {interrupted.signal_name} while starting",
            file=sys.stderr,
        )
        return interrupted_exit_code(command)
    return run()


if __name__ == "__main__":
    sys.exit(main())
