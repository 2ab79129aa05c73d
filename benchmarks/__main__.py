"""Run every benchmark and print its table."""

from . import polling

polling.main([])
