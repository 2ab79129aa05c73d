"""The exporter's configuration: reading any YAML config with its line index, every problem named
with its key path and line (``reader``); durations the Prometheus way (``durations``); the
exporter's own config file as frozen dataclasses (``loader``).

May import ``guards``. The web config (``--web.config.file``) lives in ``web`` and reads its file
through ``reader``.
"""
