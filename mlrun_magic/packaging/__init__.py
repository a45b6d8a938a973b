"""Package an MLflow project folder as a reproducible, content-addressed ``.tar.gz``.

>>> from mlrun_magic.packaging import build_archive, list_files, TerminalProgress
>>> archive = build_archive("path/to/project", progress=TerminalProgress())
>>> archive.sha256, archive.path, archive.size
>>> print(archive.summary())
>>> list_files("path/to/project").excluded      # a dry run: what would be left out, and why

The archive has one top folder, ``mlflow-project``, as MLflow's Databricks backend makes it,
but leaves out what never belongs on a cluster (``.git/``, virtualenvs, ``__pycache__``,
MLflow's local stores (``mlflow.db``, ``mlruns``, ``mlartifacts``), secrets such as ``.env``,
``id_rsa`` or ``secrets.json``...) and honours ``.mlflowignore`` or ``.gitignore``; see
:mod:`mlrun_magic.packaging.ignore` for the rules, :mod:`mlrun_magic.packaging.mlflow_stores`
and :mod:`mlrun_magic.packaging.secrets` for the stores and the secret-looking names. What was
left out as a store or a secret, and why, is in ``summary()`` and
``to_dict()["excluded_stores"]`` / ``["excluded_secrets"]``. The
archive's name is the SHA-256 of its bytes, and the same content gives the same bytes on any
machine: timestamps, owners and permissions other than the executable bit are not recorded.
An unchanged project is recognised from the manifest cache and its archive reused without
re-compressing (``Archive.cached``). Each archive's code manifest (every file's size,
SHA-256 and line count: :mod:`mlrun_magic.packaging.manifest`) is kept in the project's
``.mlrun_magic/manifests/<sha256>.json``, also for a cached archive.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.packaging import cache, manifest
from mlrun_magic.packaging.archive import COMPRESSION_LEVEL, TOP_FOLDER, Progress, write_archive
from mlrun_magic.packaging.ignore import secret_exclusions
from mlrun_magic.packaging.listing import Entry, FileListing, list_files
from mlrun_magic.packaging.mlflow_stores import store_exclusions
from mlrun_magic.packaging.progress import TerminalProgress, human_bytes

__all__ = [
    "Archive", "Entry", "FileListing", "TerminalProgress", "build_archive", "folder_manifest",
    "list_files",
    "COMPRESSION_LEVEL", "TOP_FOLDER",
]
#: At most this many secret paths are named in :meth:`Archive.summary` (``to_dict`` has all).
SUMMARY_SECRETS = 10


@dataclass
class Archive:
    """A packaged project.

    ``path`` is the ``<sha256>.tar.gz`` on disk; ``size`` its bytes; ``file_count`` and
    ``total_bytes`` count the packed files and their uncompressed content; ``excluded`` lists
    ``(relative path, reason)`` for what was left out (a folder ends with ``/``); ``cached``
    is true when the archive was recognised from the manifest cache without re-compressing.
    """

    path: Path
    sha256: str
    size: int
    file_count: int
    total_bytes: int
    excluded: list[tuple[str, str]] = field(default_factory=list)
    cached: bool = False
    project_dir: Path | None = None
    rules: str = ".gitignore"
    seconds: float = 0.0
    #: Whether the code manifest ``<project>/.mlrun_magic/manifests/<sha256>.json`` was
    #: written or found (False: a read-only project folder).
    manifest: bool = False

    def excluded_by_reason(self) -> dict[str, int]:
        """How many excluded paths each rule accounts for, most frequent first."""
        counts: dict[str, int] = {}
        for _, reason in self.excluded:
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def summary(self) -> str:
        """One paragraph for people: what was packed, where, and what was left out and why."""
        ratio = f", {self.size / self.total_bytes:.0%} of the content" if self.total_bytes \
            else ""
        how = "reused from the cache (unchanged project)" if self.cached \
            else f"built in {self.seconds:.1f} s"
        text = (f"Packaged {self.file_count:,} files ({human_bytes(self.total_bytes)}) from "
                f"{self.project_dir} into {self.path.name} ({human_bytes(self.size)}{ratio}), "
                f"{how}. SHA-256 {self.sha256}.")
        if self.excluded:
            reasons = "; ".join(f"{n} by {reason}"
                                for reason, n in self.excluded_by_reason().items())
            text += (f" Excluded {len(self.excluded):,} path"
                     f"{'s' if len(self.excluded) != 1 else ''}: {reasons}.")
        else:
            text += " Nothing was excluded."
        secrets = self.secrets
        if secrets:
            named = "; ".join(f"{s['path']} ({s['kind']}, rule '{s['rule']}')"
                              for s in secrets[:SUMMARY_SECRETS])
            more = len(secrets) - SUMMARY_SECRETS
            text += (f" Left out as secrets: {named}{f'; and {more} more' if more > 0 else ''}."
                     " To package one anyway, name it in .mlflowignore with '!' "
                     "(e.g. '!.env.example').")
        stores = self.stores
        if stores:
            named = "; ".join(s["path"] for s in stores[:SUMMARY_SECRETS])
            more = len(stores) - SUMMARY_SECRETS
            text += (f" Left out as MLflow's local stores (tracking data, not code): {named}"
                     f"{f'; and {more} more' if more > 0 else ''}. To package one anyway, name"
                     " it in .mlflowignore with '!' (e.g. '!mlflow.db').")
        return text

    @property
    def secrets(self) -> list[dict]:
        """The paths left out because they look like secrets: ``{"path", "rule", "kind"}``."""
        return secret_exclusions(self.excluded)

    @property
    def stores(self) -> list[dict]:
        """The paths left out as MLflow's local stores: ``{"path", "reason"}``."""
        return store_exclusions(self.excluded)

    def to_dict(self) -> dict:
        """JSON-ready form (``package --json``)."""
        return {
            "path": str(self.path), "sha256": self.sha256, "size": self.size,
            "file_count": self.file_count, "total_bytes": self.total_bytes,
            "excluded": [{"path": p, "reason": r} for p, r in self.excluded],
            "excluded_secrets": self.secrets,
            "excluded_stores": self.stores,
            "cached": self.cached, "project_dir": str(self.project_dir), "rules": self.rules,
            "seconds": round(self.seconds, 3),
        }


def build_archive(project_dir: str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
                  progress: Progress | None = None, use_cache: bool = True,
                  level: int = COMPRESSION_LEVEL) -> Archive:
    """Package ``project_dir`` as ``<out_dir>/<sha256>.tar.gz`` and describe the result.

    ``out_dir`` defaults to ``${XDG_CACHE_HOME:-~/.cache}/mlrun_magic/archives``.
    ``progress(done_bytes, total_bytes)`` is called as file content is read (see
    :class:`TerminalProgress`). With ``use_cache`` (the default), an unchanged project whose
    archive is still in ``out_dir`` is recognised from its file list alone and returned with
    ``cached=True``. ``level`` is the zlib compression level (a different level gives a
    different hash).

    Raises :class:`mlrun_magic.errors.PackagingError` when the folder cannot be packaged: a
    symbolic link out of the project or to nothing, an unreadable file, a file that changes
    while it is being read.
    """
    start = time.perf_counter()
    listing = list_files(project_dir)
    target = Path(out_dir) if out_dir is not None else cache.cache_dir()
    target = Path(os.path.abspath(target))
    key = cache.manifest_key(listing, level)
    if use_cache:
        record = cache.lookup(listing, key, target)
        if record is not None:
            if progress:
                progress(listing.total_bytes, listing.total_bytes)
            archive = _archive(listing, Path(record["path"]), record["sha256"],
                               record["size"], True, start)
            archive.manifest = manifest.has_manifest(listing.root, archive.sha256) \
                or _keep_manifest(listing, archive.sha256, manifest.scan_records(listing))
            return archive
    written = write_archive(listing, target, level=level, progress=progress)
    if use_cache:
        cache.store(listing, key, written.path, written.sha256, written.size)
    if target == cache.cache_dir():
        cache.prune()
    archive = _archive(listing, Path(written.path), written.sha256, written.size, False, start)
    archive.manifest = _keep_manifest(listing, written.sha256, written.records)
    return archive


def _keep_manifest(listing: FileListing, sha256: str, records) -> bool:
    """Write the archive's code manifest into the project's state folder; False when the
    folder cannot be written (the run goes on, only its code comparison is missing)."""
    try:
        manifest.write_manifest(listing.root, sha256, records)
    except OSError:
        return False
    return True


def _archive(listing: FileListing, path: Path, sha256: str, size: int, cached: bool,
             start: float) -> Archive:
    return Archive(path=path, sha256=sha256, size=size, file_count=listing.file_count,
                   total_bytes=listing.total_bytes, excluded=list(listing.excluded),
                   cached=cached, project_dir=listing.root, rules=listing.rules_mode,
                   seconds=time.perf_counter() - start)


def folder_manifest(project_dir: str | os.PathLike) -> str | None:
    """Record the code manifest of a folder a run uses as it is (a local run, which packs
    nothing) and return its id, or None when the state folder cannot be written.

    The files are those an archive would hold (the same listing and ignore rules). Their
    contents are hashed only when the listing's sizes and timestamps changed since the last
    time (``manifests/folder.json`` keeps that key): an unchanged project costs a listing.
    """
    listing = list_files(project_dir)
    key = cache.manifest_key(listing, 0)
    index = manifest.manifest_dir(listing.root) / "folder.json"
    try:
        known = json.loads(index.read_text())
        if known.get("key") == key and manifest.has_manifest(listing.root, known.get("id")):
            return known["id"]
    except (OSError, ValueError, AttributeError):
        pass
    records = manifest.scan_records(listing)
    ident = manifest.manifest_id(records)
    if not _keep_manifest(listing, ident, records):
        return None
    newest = max((e.mtime_ns for e in listing.entries if e.kind == "file"), default=0)
    if newest < listing.started_ns - cache.RACY_WINDOW_NS:  # as the archive cache: no racy key
        with contextlib.suppress(OSError):
            index.write_text(json.dumps({"key": key, "id": ident}))
    return ident
