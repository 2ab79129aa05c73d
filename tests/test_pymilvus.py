"""pymilvus' own REST bulk-import helpers against the simulator's `milvus` flavour (optional).

A client no one here wrote is the best check that the flavour answers like a real server. It is
skipped unless pymilvus and the packages its `bulk_writer` insists on are installed (they are
heavy and no test extra); `scripts/check_pymilvus.py` says how to install them and prints what
pymilvus got.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_pymilvus.py"


def test_pymilvus_bulk_import_helpers_read_the_milvus_flavour():
    pytest.importorskip("pymilvus.bulk_writer", reason="pymilvus with its bulk_writer packages")
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("all checks hold")
