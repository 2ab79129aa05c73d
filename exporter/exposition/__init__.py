"""What /metrics is made of: every metric declared once (``catalogue``), families rendered to
bytes as their samples are added (``families``), and the cache that holds the rendered text,
gzip and OpenMetrics bytes between two cycles (``cache``).

Imports nothing of the exporter: the layers above fill these families, the web server serves the
cache.
"""
