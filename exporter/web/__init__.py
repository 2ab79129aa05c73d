"""The HTTP side of the exporter, an exporter-toolkit of its own: the server and its routes
(``server``), its limits against hostile clients (``limits``: deadlines, connection cap, header
and body limits), the web config file (``webconfig``), its TLS context (``tls``), basic auth
against bcrypt hashes (``basicauth``), and the rows the daemon hands the server for its pages
(``status``).

May import ``config`` (the YAML reader), ``guards`` and ``exposition`` (the cache it serves).
Never calls upstream: a scrape is answered from what the last poll cycle published.
"""
