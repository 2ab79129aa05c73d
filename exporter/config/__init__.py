"""The exporter's configuration: reading any YAML config with its line index, every problem named
with its key path and line (``reader``); durations the Prometheus way (``durations``); how a key
is declared (``schema``); every key of the exporter's config file, declared once as a field of
``Config`` / ``ClusterConfig`` with its reader, default, bound and doc line (``keys``); reading a
file into them (``loader``); and the keys table of docs/configuration.md, generated from the
declarations (``reference``).

May import ``guards`` and ``kinds`` (a cluster's ``jobs`` are checked against the declared kinds,
and its default is the kinds declared default). The web config (``--web.config.file``) lives in
``web`` and reads its file through ``reader``.
"""
