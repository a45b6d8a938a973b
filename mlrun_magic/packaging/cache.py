"""The manifest cache: recognise an unchanged project without re-compressing it.

Each packaged project folder has one small JSON record under
``${XDG_CACHE_HOME:-~/.cache}/mlrun_magic/archives/manifests/`` (named after a digest of the
folder's real path). It holds a *key*, a digest of the archive format version, the
compression level, every ignore rule in force and the ``(path, kind, size, mtime_ns, mode,
link target)`` of every packed entry, plus the archive it produced. A build whose key
matches and whose archive is still on disk with the recorded size and mtime reuses it.

A file modified within :data:`RACY_WINDOW_NS` of the walk is "racily clean" (a later edit
could keep the same size and timestamp on a coarse-grained file system), so such a build is
not recorded; the next one re-compresses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from mlrun_magic.packaging.listing import FileListing

#: Bumped whenever the archive layout changes, so old records are never reused.
FORMAT_VERSION = "1"
RACY_WINDOW_NS = 2_000_000_000


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/mlrun_magic/archives``: the default home of archives."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlrun_magic" / "archives"


def manifest_key(listing: FileListing, level: int) -> str:
    """The digest that changes whenever the archive of ``listing`` could change."""
    h = hashlib.sha256(f"mlrun_magic-archive-v{FORMAT_VERSION}\0level={level}\0"
                       f"{listing.rules_fingerprint}\0".encode())
    for e in listing.entries:
        h.update(f"{e.path}\0{e.kind}\0{e.size}\0{e.mtime_ns}\0{e.mode:o}\0{e.link or ''}\n"
                 .encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _record_path(root: Path) -> Path:
    name = hashlib.sha256(os.fsencode(str(root))).hexdigest()[:32]
    return cache_dir() / "manifests" / f"{name}.json"


def lookup(listing: FileListing, key: str, out_dir: Path) -> dict | None:
    """The cached record for ``listing`` if its key matches and its archive is intact."""
    try:
        record = json.loads(_record_path(listing.root).read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key:
        return None
    path = Path(record.get("path", ""))
    if path.parent != Path(out_dir):
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_size != record.get("size") or st.st_mtime_ns != record.get("archive_mtime_ns"):
        return None
    return record


def store(listing: FileListing, key: str, path: str, sha256: str, size: int) -> bool:
    """Record the archive built for ``listing``; False when it is racily clean (not stored).

    The project's previous archive is deleted when it lived in the cache folder and is no
    longer the current one.
    """
    newest = max((e.mtime_ns for e in listing.entries if e.kind == "file"), default=0)
    record_file = _record_path(listing.root)
    previous = None
    try:
        previous = json.loads(record_file.read_text()).get("path")
    except (OSError, ValueError):
        pass
    if previous and previous != path and Path(previous).parent == cache_dir():
        try:
            os.unlink(previous)
        except OSError:
            pass
    if newest >= listing.started_ns - RACY_WINDOW_NS:
        try:
            record_file.unlink()
        except OSError:
            pass
        return False
    record = {"key": key, "root": str(listing.root), "path": path, "sha256": sha256,
              "size": size, "archive_mtime_ns": os.stat(path).st_mtime_ns}
    record_file.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of its own: two builds of one project at once (the panel's Check and
    # a %project_run doctor, two kernels) must not rename each other's file away.
    fd, tmp = tempfile.mkstemp(dir=record_file.parent, prefix=record_file.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(record))
        os.replace(tmp, record_file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def prune(max_age_s: float = 86400.0) -> None:
    """Delete archives in the cache folder that no record refers to and that are older than
    ``max_age_s`` (left by ``use_cache=False`` builds or interrupted ones)."""
    import time

    folder = cache_dir()
    referenced = set()
    for record_file in (folder / "manifests").glob("*.json"):
        try:
            referenced.add(json.loads(record_file.read_text()).get("path"))
        except (OSError, ValueError):
            continue
    cutoff = time.time() - max_age_s
    for pattern in ("*.tar.gz", ".partial-*"):
        for path in folder.glob(pattern):
            try:
                if str(path) not in referenced and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
