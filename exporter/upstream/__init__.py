"""The Milvus job API, as a client sees it: typed records parsed liberally from what real servers
send (``records``), the client with its envelope, codes and bounded failure reasons (``client``),
HTTP sessions whose every request keeps one deadline from name resolution on (``transport``,
``resolver``), the strict per-(credential, path) rate limiter (``ratelimit``) and the one retry
policy (``retry``).

May import ``guards``. Never imports config, polling, metrics or web: the operator commands use
it as the daemon does, and the job kinds (``kinds``) read their records with its field readers.
"""
