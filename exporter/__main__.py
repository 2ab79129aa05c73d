"""``python -m exporter`` runs the same command line as ``milvus-jobs-exporter``."""

import sys

from .cli import main

sys.exit(main())
