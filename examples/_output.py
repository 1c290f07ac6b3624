"""Where the examples write: the directory given as the first argument, else $NEUROSPIKE_EXAMPLES_OUT, else a
new temporary directory (printed)."""

import os
import sys
import tempfile
from pathlib import Path


def output_dir() -> Path:
    chosen = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NEUROSPIKE_EXAMPLES_OUT")
    path = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="neurospike-example-"))
    path.mkdir(parents=True, exist_ok=True)
    return path
