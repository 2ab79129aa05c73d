"""What the exporter remembers beyond one poll and across restarts, in the two strategies a job
kind declares, each implemented once: each collection's newest success and failure
(``history``), or its newest finished job (``newest_finished``); the evidence that a collection
is gone (``evidence``), targets removed on purpose (``removals``), and the state file that
carries them over a restart, each kind's memory under its name (``state``, ``legacy`` for the
files of versions 1 and 2).

May import ``kinds``, ``polling`` (snapshots), ``upstream`` (records), ``exposition``,
``config`` and ``guards``. Bounded by construction: every memory has its limit and counts what
it forgets.
"""
