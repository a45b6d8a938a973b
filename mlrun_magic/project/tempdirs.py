"""The temporary folders of fetched projects (git clones, unpacked zips).

Each one lives until the process exits (a local run works in it, a Databricks run packages it),
then it is removed; one whose fetch failed or was interrupted is removed at once by its owner
with :func:`remove_temp_dir`, so a refused or broken project leaves nothing behind, and so is
one fetched by a call decorated with :func:`removed_on_error` that then failed (a plan of a
broken project: nobody holds its folder).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path

_made: list[str] = []
_maker: dict[str, int] = {}  # folder -> the thread that made it


def make_temp_dir(prefix: str) -> Path:
    """A new private (0700) folder under the system's temporary folder, removed at exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not _made:
        atexit.register(remove_temp_dirs)
    _made.append(path)
    _maker[path] = threading.get_ident()
    return Path(path)


def temp_dirs() -> list[str]:
    """The folders made by :func:`make_temp_dir` and not removed yet, oldest first."""
    return list(_made)


def remove_temp_dir(path: Path | str) -> None:
    """Remove one folder made by :func:`make_temp_dir` now (on a failed or interrupted fetch)."""
    shutil.rmtree(path, ignore_errors=True)
    if str(path) in _made:
        _made.remove(str(path))
    _maker.pop(str(path), None)


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


def removed_on_error(function):
    """Decorate a function that may fetch a project (``make_plan``): when it raises, the
    folders it made (in this thread: another thread's plan keeps its own) are removed."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        before = set(_made)
        try:
            return function(*args, **kwargs)
        except BaseException:
            me = threading.get_ident()
            for path in [p for p in _made if p not in before and _maker.get(p) == me]:
                remove_temp_dir(path)
            raise
    return call
