"""The Milvus job API, as a client sees it: typed records parsed liberally from what real servers
send (``records``), a list answer's readable jobs, skipped records and pages (``listing``), the
client with its envelope and codes (``client``) and its bounded failure reasons (``errors``),
HTTP sessions whose every request keeps one deadline from name resolution on (``transport``,
``resolver``), the strict per-(credential, path) rate limiter (``ratelimit``) and the one retry
policy (``retry``).

May import ``guards``. Never imports config, polling, metrics or web: the operator commands use
it as the daemon does, and the job kinds (``kinds``) read their records with its field readers.
"""
