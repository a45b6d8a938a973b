"""The temporary folders of fetched projects (git clones, unpacked zips).

Each one lives until the process exits (a local run works in it, a Databricks run packages it),
then it is removed; one whose fetch failed or was interrupted is removed at once by its owner
with :func:`remove_temp_dir`, so a refused or broken project leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_made: list[str] = []


def make_temp_dir(prefix: str) -> Path:
    """A new private (0700) folder under the system's temporary folder, removed at exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not _made:
        atexit.register(remove_temp_dirs)
    _made.append(path)
    return Path(path)


def temp_dirs() -> list[str]:
    """The folders made by :func:`make_temp_dir` and not removed yet, oldest first."""
    return list(_made)


def remove_temp_dir(path: Path | str) -> None:
    """Remove one folder made by :func:`make_temp_dir` now (on a failed or interrupted fetch)."""
    shutil.rmtree(path, ignore_errors=True)
    if str(path) in _made:
        _made.remove(str(path))


def remove_temp_dirs() -> None:
    """Remove every folder still there (runs at process exit)."""
    for path in list(_made):
        remove_temp_dir(path)


def remove_temp_dir_holding(path: Path | str) -> bool:
    """Remove the folder made by :func:`make_temp_dir` that holds ``path`` (a fetched
    project no longer needed: a dry run's, once shown); False when ``path`` is in none."""
    path = os.path.realpath(path)
    for made in list(_made):
        real = os.path.realpath(made)
        if path == real or path.startswith(real + os.sep):
            remove_temp_dir(made)
            return True
    return False
