"""MLflow's local stores, which packaging leaves out: a run's tracking data is not code.

A local run without a tracking URI makes MLflow write its store into the folder it runs in:
``mlflow.db`` (sqlite, MLflow 3), ``mlruns/`` (the folder store, and the default artifact
root) and ``mlartifacts/`` (the artifacts of ``mlflow server``). Uploaded with the project
they waste the upload and publish every run's parameters and metrics to the workspace. They
are found

* by name: ``mlflow.db`` (with its ``-journal``/``-wal``/``-shm`` companions), ``mlruns``
  and ``mlartifacts``, at any depth;
* by content, for a store under another name (``tracking.sqlite``, ``runs.db``): a file
  that starts with SQLite's 16-byte header *and* holds MLflow's ``alembic_version`` and
  ``experiments`` tables. The header is read only from files of at least
  :data:`MIN_STORE_BYTES` (every MLflow store is bigger: it has dozens of tables of a page
  each), and only such files are opened with ``sqlite3``, read-only and immutable (no lock,
  no journal, nothing written), to read their table names. A user's own SQLite data file
  without those tables is packed.

Each is left out unless the ignore file re-includes it by name (``!mlflow.db``), as a
secret is.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import quote

#: ``(name, what it is)``: a file or folder with that name, at any depth, is a store.
STORE_RULES: tuple[tuple[str, str], ...] = (
    ("mlflow.db", "MLflow's default sqlite store"),
    ("mlflow.db-journal", "MLflow's sqlite store (journal)"),
    ("mlflow.db-wal", "MLflow's sqlite store (write-ahead log)"),
    ("mlflow.db-shm", "MLflow's sqlite store (shared memory)"),
    ("mlruns", "MLflow's folder store and default artifact root"),
    ("mlartifacts", "MLflow server's artifact store"),
)
#: The reason of a store found by its content (there is no pattern that names it).
CONTENT_REASON = "MLflow store (a sqlite database with MLflow's tables)"
STORE_PREFIX = "MLflow store"
SQLITE_HEADER = b"SQLite format 3\x00"
#: Smaller files are not read at all: an MLflow store holds dozens of tables of one page
#: (1 to 4 KiB) at least; a fresh MLflow 3 store is close to 1 MB.
MIN_STORE_BYTES = 8192
MLFLOW_TABLES = ("alembic_version", "experiments")


def store_reason(pattern: str) -> str:
    """The exclusion reason of a store found by ``pattern``."""
    return f"{STORE_PREFIX} '{pattern}'"


def is_store_reason(reason: str) -> bool:
    return reason.startswith(STORE_PREFIX)


def is_mlflow_sqlite(path: str, size: int) -> bool:
    """True when the file at ``path`` (``size`` bytes) is an MLflow sqlite store: SQLite's
    header and MLflow's tables. Never raises; never writes."""
    if size < MIN_STORE_BYTES:
        return False
    try:
        # Non-blocking, and only a regular file: the walk's size may be of a file since
        # replaced by a FIFO or a device, and opening a FIFO waits for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) |
                     getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # unreadable files (and links) are reported by the walk itself
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or \
                    f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                return False
        except OSError:
            return False
    try:
        import sqlite3
    except ImportError:  # a Python built without sqlite3: only the names above are known
        return False
    try:
        connection = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro&immutable=1",
                                     uri=True)
    except sqlite3.Error:
        return False
    try:
        names = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            MLFLOW_TABLES)}
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return names == set(MLFLOW_TABLES)


def store_exclusions(excluded: list[tuple[str, str]]) -> list[dict]:
    """The ``(path, reason)`` pairs of ``excluded`` left out as MLflow stores, as
    ``{"path", "reason"}`` dicts."""
    return [{"path": path, "reason": reason} for path, reason in excluded
            if is_store_reason(reason)]
