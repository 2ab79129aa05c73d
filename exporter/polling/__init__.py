"""Polling: what to poll (``targets``, ``watchlist``, ``discovery`` of databases), the rounds
with their deadline, rate limit and bounded pool (``poller``, ``tasks``), a target's list as
its kind declares it (``lists``) and what of its last one is reused (``reuse``), the
follow-ups that never hold a round (``describes``, ``collection_lists``), the caps on what a
list answer may cost (``kept``, ``descriptors``), odd data and repeated failures logged once
(``oddities``, ``repeats``), and the immutable snapshots handed on (``snapshots``).

Names no job kind: a target's list, its paging, keep rules and follow-ups come from its kind's
declaration. May import ``kinds``, ``upstream``, ``config`` and ``guards``. Never formats a
metric.
"""
