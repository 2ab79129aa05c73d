"""The rules of what is exported: from a poll cycle's snapshots, the time and the memory to metric
families (``model``), what one job and one collection look like on /metrics, written from the
series each kind declares (``series``), and what the exporter says about its own health
(``health``). Names no job kind.

May import every layer below: ``kinds``, ``memory``, ``polling``, ``upstream``, ``exposition``,
``config``, ``guards``. No I/O and no threads: the daemon calls it between two cycles.
"""
