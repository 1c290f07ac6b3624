"""Report folders (``compare``, ``convergence``, ``sweep-alpha``, ``paper``, ``fit``): all or nothing, with a
manifest.

A report folder holds ``.neurospike-report.json``: the report's files, the command that wrote it and when. A rerun
into the same folder replaces the report: the previous report's files that this one does not rewrite are removed
(a LIF comparison leaves no phase plane of an earlier two-state run); files the manifest does not list are kept.
A non-empty folder without a manifest holds someone else's files: it is refused before anything runs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Union

from .errors import NeurospikeError

MANIFEST = ".neurospike-report.json"

#: name -> write(path) for each file, or one function that writes its files into the folder it is given
Writers = Union[Mapping[str, Callable[[Path], None]], Callable[[Path], None]]


def check_folder(out) -> Path | None:
    """``out`` as a Path (None stays None); refuses, in one line, a file or a non-empty folder without a manifest."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NeurospikeError(f"output folder {str(out)!r} is an existing file; give a folder")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        free = next(out.with_name(f"{out.name}-{k}") for k in range(2, 10**6)
                    if not out.with_name(f"{out.name}-{k}").exists())
        raise NeurospikeError(f"output folder {str(out)!r} holds files that no neurospike report wrote (no "
                              f"{MANIFEST}); give a new or empty folder, e.g. --out {str(free)}")
    return out


def _previous_files(out: Path) -> set[str]:
    """The file names the folder's manifest lists (plain names only: a manifest never reaches outside)."""
    try:
        listed = json.loads((out / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for name in listed if isinstance(name, str) and name not in ("", ".", "..", MANIFEST)
            and Path(name).name == name}


def write(out, writers: Writers) -> list[Path]:
    """Write a report into the folder ``out`` (created if missing), all or nothing: every file goes to a temporary
    folder beside it first and is moved in only when all are written. Then the previous report's files that were
    not rewritten are removed and the manifest is written. Returns the report's file paths."""
    out = check_folder(out)
    previous = _previous_files(out) if out.is_dir() else set()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        if callable(writers):
            writers(staging)
        else:
            for name, write_file in writers.items():
                write_file(staging / name)
        names = sorted(path.name for path in staging.iterdir() if path.is_file())
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name in previous - set(names):
        (out / name).unlink(missing_ok=True)
    program = Path(sys.argv[0]).name
    program = "neurospike" if program == "cli.py" else program  # python -m neurospike.cli
    command = " ".join(shlex.quote(arg) for arg in [program, *sys.argv[1:]])
    manifest = {"files": names, "command": command, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    partial = out / f"{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, out / MANIFEST)
    return [out / name for name in names]
