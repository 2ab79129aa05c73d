"""Guards every layer may use against hostile input and peers: text made safe (secrets scrubbed,
always valid UTF-8: ``redact``) and deadlines that shut a socket down when its time is up, however
slowly its bytes trickle (``watchdog``).

Imports nothing of the exporter, so anything may import it.
"""
