"""Code manifests: what each packaged file was, so two runs' code can be compared.

A manifest lists, for every file of an archive, its project-relative path, its size, the
SHA-256 of its content and, for a text file, its line count. A file is *text* when it holds
no NUL byte and its bytes decode as UTF-8 (checked incrementally as the file streams by, so
memory stays constant); anything else is binary and has no line count. Lines are the number
of ``\\n`` plus one when the last line has none (an empty file has 0 lines).

Manifests live in the project's state folder, ``<project>/.mlrun_magic/manifests/<id>.json``,
so they survive the archive cache's pruning and kernel restarts. The id is the archive's
SHA-256 for a packaged run, or (a local run, which runs from the folder) the SHA-256 of the
manifest's own file list. Reading one back is bounded (:data:`MAX_MANIFEST_BYTES`); a
damaged or missing manifest is :class:`ManifestUnreadable`, never a crash.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.project import bounded

FOLDER = "manifests"
VERSION = 1
#: A manifest read back is at most this big (some 150,000 files).
MAX_MANIFEST_BYTES = 32 * bounded.MIB
_ID = re.compile(r"^[0-9a-f]{64}$")


class ManifestUnreadable(MlrunMagicError):
    """A run's code manifest is missing or damaged; only the code comparison is lost."""

    title = "manifest unreadable"


@dataclass(frozen=True)
class FileRecord:
    """One packed file: ``path``, ``size``, ``sha256`` of its content, ``lines`` (None:
    binary)."""

    path: str
    size: int
    sha256: str
    lines: int | None


class FileDigest:
    """Fed a file's bytes chunk by chunk; gives its :class:`FileRecord` at the end."""

    def __init__(self, path: str):
        self.path = path
        self.sha = hashlib.sha256()
        self.size = 0
        self.newlines = 0
        self.last = b""
        self.text = True
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def update(self, chunk) -> None:
        self.sha.update(chunk)
        self.size += len(chunk)
        if not chunk:
            return
        self.last = chunk[-1:]
        if self.text:
            data = bytes(chunk) if isinstance(chunk, memoryview) else chunk
            if b"\0" in data:
                self.text = False
                return
            try:
                self._utf8.decode(data)
            except UnicodeDecodeError:
                self.text = False
                return
            self.newlines += data.count(b"\n")

    def record(self) -> FileRecord:
        lines = None
        if self.text:
            try:
                self._utf8.decode(b"", final=True)
                lines = self.newlines + (1 if self.size and self.last != b"\n" else 0)
            except UnicodeDecodeError:
                pass
        return FileRecord(self.path, self.size, self.sha.hexdigest(), lines)


def manifest_dir(project_dir) -> Path:
    """``<project>/.mlrun_magic/manifests`` (not created)."""
    return Path(project_dir) / ".mlrun_magic" / FOLDER


def manifest_id(records: list[FileRecord]) -> str:
    """The SHA-256 of a file list: the id of a manifest that has no archive (a local run)."""
    h = hashlib.sha256(b"mlrun_magic-manifest-v1\n")
    for r in sorted(records, key=lambda r: r.path):
        h.update(f"{r.path}\0{r.size}\0{r.sha256}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def write_manifest(project_dir, ident: str, records: list[FileRecord]) -> Path:
    """Write the manifest ``ident`` of ``project_dir`` atomically; returns its path."""
    folder = manifest_dir(project_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# mlrun_magic's run history and logs: local state, never committed\n*\n")
    data = {"version": VERSION, "id": ident,
            "files": [[r.path, r.size, r.sha256, r.lines] for r in records]}
    final = folder / f"{ident}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return final


def has_manifest(project_dir, ident: str) -> bool:
    """Whether the manifest ``ident`` is on disk."""
    return bool(_ID.match(ident or "")) and (manifest_dir(project_dir) / f"{ident}.json").is_file()


def read_manifest(project_dir, ident: str) -> dict[str, FileRecord]:
    """The manifest ``ident`` as ``{path: FileRecord}``; :class:`ManifestUnreadable` if it
    is missing, too large or damaged."""
    if not isinstance(ident, str) or not _ID.match(ident):
        raise ManifestUnreadable(f"manifest id {bounded.short(ident)} is not a SHA-256")
    path = manifest_dir(project_dir) / f"{ident}.json"
    try:
        data = json.loads(bounded.read_text(path, MAX_MANIFEST_BYTES))
    except bounded.InputReadError as exc:
        raise ManifestUnreadable(f"manifest {ident[:12]}… {exc.message}",
                                 hint="The code comparison of this run is not available.") \
            from None
    except (ValueError, RecursionError):
        raise ManifestUnreadable(f"manifest {ident[:12]}… is not valid JSON",
                                 hint="The code comparison of this run is not available.") \
            from None
    return _records(data, ident)


def _records(data, ident: str) -> dict[str, FileRecord]:
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise ManifestUnreadable(f"manifest {ident[:12]}… has no file list")
    out: dict[str, FileRecord] = {}
    for item in files:
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
                and _count(item[1]) and isinstance(item[2], str)
                and (item[3] is None or _count(item[3]))):
            raise ManifestUnreadable(f"manifest {ident[:12]}… has a damaged entry")
        out[item[0]] = FileRecord(item[0], item[1], item[2], item[3])
    return out


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def scan_records(listing) -> list[FileRecord]:
    """The records of a :class:`~mlrun_magic.packaging.listing.FileListing`'s files, read
    from disk in 1 MiB chunks (for a cached archive without a manifest, and local runs)."""
    records = []
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for entry in listing.entries:
        if entry.kind != "file":
            continue
        digest = FileDigest(entry.path)
        try:
            with open(os.path.join(str(listing.root), entry.path), "rb", buffering=0) as f:
                while n := f.readinto(view):
                    digest.update(view[:n])
        except OSError:
            continue  # gone or unreadable since listed: left out of the comparison only
        records.append(digest.record())
    return records
