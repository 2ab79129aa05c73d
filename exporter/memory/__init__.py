"""What the exporter remembers beyond one poll and across restarts: each collection's newest
refresh success and failure (``history``), its newest finished import (``imports``), the evidence
that a collection is gone (``evidence``), targets removed on purpose (``removals``), and the state
file that carries them over a restart (``state``).

May import ``polling`` (snapshots), ``upstream`` (records), ``exposition``, ``config`` and
``guards``. Bounded by construction: every memory has its limit and counts what it forgets.
"""
