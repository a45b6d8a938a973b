"""Where workspace paths live on this machine: the role of a cluster's FUSE mounts.

The workspace keeps everything under its storage folder::

    /Volumes/<catalog>/<schema>/<volume>/...   ->  <storage_root>/Volumes/...
    /Workspace/<path>  (and /Users/..., /Shared/..., /Repos/... workspace paths)
                                               ->  <storage_root>/Workspace/<path>
    dbfs:/<path>, /dbfs/<path>, DBFS API paths ->  <storage_root>/dbfs/<path>

A job's driver process gets ``MLRUN_MAGIC_TESTING_FUSE_ROOT=<storage_root>`` in its
environment; code that runs there can call :func:`local_path` (which reads that variable) to
open a workspace path. The workspace already translates ``python_file`` and every task
parameter that starts with one of these prefixes (or is ``--flag=<such a path>``).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

FUSE_ROOT_ENV = "MLRUN_MAGIC_TESTING_FUSE_ROOT"

_WORKSPACE_TOPS = ("/Users/", "/Shared/", "/Repos/")


class PathError(ValueError):
    """A path that is not absolute or tries to leave its area with ``..``."""


def _clean(path: str) -> str:
    if not path.startswith("/"):
        raise PathError(f"Path must be absolute: {path!r}")
    if any(part == ".." for part in path.split("/")):
        raise PathError(f"Path must not contain '..': {path!r}")
    cleaned = posixpath.normpath(path)
    return "/" if cleaned in ("/", "//") else cleaned


def dbfs_relative(path: str) -> str:
    """``dbfs:/a/b``, ``/dbfs/a/b`` or ``/a/b`` as the DBFS path ``/a/b``."""
    if path.startswith("dbfs:"):
        path = path[len("dbfs:"):]
        path = path if path.startswith("/") else "/" + path
    return _clean(path)


def workspace_relative(path: str) -> str:
    """A workspace path without its optional ``/Workspace`` prefix: ``/Users/me/x``."""
    path = _clean(path)
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace"):] or "/"
    return path


def local_path(path: str, root: str | os.PathLike | None = None) -> Path:
    """The file on this machine behind a ``/Volumes``, ``/Workspace`` or DBFS path.

    ``root`` defaults to ``$MLRUN_MAGIC_TESTING_FUSE_ROOT``. Other paths come back unchanged.
    """
    base = Path(root if root is not None else os.environ[FUSE_ROOT_ENV])
    if path.startswith("dbfs:"):
        return base / "dbfs" / dbfs_relative(path).lstrip("/")
    if path == "/dbfs" or path.startswith("/dbfs/"):
        return base / "dbfs" / _clean(path)[len("/dbfs"):].lstrip("/")
    if path.startswith("/Volumes/"):
        return base / _clean(path).lstrip("/")
    if path == "/Workspace" or path.startswith("/Workspace/") or path.startswith(_WORKSPACE_TOPS):
        return base / "Workspace" / workspace_relative(path).lstrip("/")
    return Path(path)


def is_workspace_path(value: str) -> bool:
    """Whether ``value`` names a file the cluster would reach through a mount."""
    return value.startswith(("dbfs:/", "/dbfs/", "/Volumes/", "/Workspace/"))


def translate_argument(value: str, root: str | os.PathLike) -> str:
    """A task parameter with a leading workspace path (or ``--x=<path>``) made local."""
    if is_workspace_path(value):
        return str(local_path(value, root))
    flag, eq, rest = value.partition("=")
    if eq and flag.startswith("-") and is_workspace_path(rest):
        return f"{flag}={local_path(rest, root)}"
    return value
