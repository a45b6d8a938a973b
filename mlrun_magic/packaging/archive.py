"""Write a project's files as a reproducible ``.tar.gz`` in one streaming pass.

The archive holds one top folder, ``mlflow-project`` (as MLflow's Databricks backend does),
entries in :func:`~mlrun_magic.packaging.listing.list_files` order, every header normalised
(mtime 0, uid/gid 0, empty user and group names, mode 0644 or 0755, PAX format) and a gzip
header with no file name, mtime 0 and OS byte 255 ("unknown"). The same content thus gives
the same bytes, hence the same SHA-256, on any machine with the same zlib.

Files are read in 1 MiB chunks, compressed and written to a temporary file while the SHA-256
of the compressed bytes is computed in the same pass; memory use does not grow with the
project's size. The same pass gives each file's code-manifest record (its content's SHA-256
and, for text, its line count: :mod:`mlrun_magic.packaging.manifest`).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mlrun_magic.errors import PackagingError
from mlrun_magic.packaging.listing import Entry, FileListing
from mlrun_magic.packaging.manifest import FileDigest, FileRecord

#: The single top folder of the archive, the name MLflow's Databricks backend uses.
TOP_FOLDER = "mlflow-project"
#: zlib level. Measured on the benchmark's CSV: level 1 deflates at ~52 MB/s a core, 6 at
#: ~11 MB/s, 9 (MLflow's) at ~5 MB/s, for archives only ~10% larger than 6's; uploading that
#: difference costs less than the compression time saved. Part of the format: another level
#: gives other bytes, hence another SHA-256.
COMPRESSION_LEVEL = 1
CHUNK = 1 << 20
#: Size of the independently deflated slices of the tar stream (part of the format: changing
#: it changes every hash).
SLICE = 1 << 20
_WINDOW = 32 * 1024
_SAMPLE = 16 * 1024
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE

Progress = Callable[[int, int], None]


@dataclass
class WriteResult:
    """What :func:`write_archive` produced."""

    path: str
    sha256: str
    size: int
    #: Each packed file's path, size, content SHA-256 and line count (the code manifest).
    records: list[FileRecord] = field(default_factory=list)


class _HashingWriter:
    """A file wrapper that feeds every byte written through a SHA-256 and counts them."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> None:
        self.sha.update(data)
        self.raw.write(data)
        self.size += len(data)


class _GzipWriter:
    """A gzip member writer with a fixed header (no name, mtime 0, OS byte 255).

    The uncompressed stream is cut into fixed :data:`SLICE`-byte slices, each deflated on its
    own in a worker thread (zlib releases the GIL), primed with the previous slice's last
    32 KiB as dictionary, ended with a sync flush, and written in order: one standard deflate
    stream (pigz's scheme), whose bytes depend only on the content, never on the number of
    threads. A slice whose samples do not compress is stored (level 0): random-looking data
    (weights, images, parquet) then costs a copy instead of a futile search for matches.
    """

    def __init__(self, out: _HashingWriter, level: int, workers: int | None = None):
        self.out = out
        self.level = level
        self.crc = 0
        self.length = 0
        self._buf = bytearray()
        self._tail = b""
        self._workers = workers or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="deflate") \
            if self._workers > 1 else None
        self._pending: deque = deque()
        xfl = 2 if level == 9 else 4 if level == 1 else 0  # as RFC 1952 and Python's gzip
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 255)))

    def write(self, data) -> None:
        self._buf += data
        if len(self._buf) >= SLICE:
            view = memoryview(self._buf)
            cut = len(self._buf) - len(self._buf) % SLICE
            for start in range(0, cut, SLICE):
                self._submit(bytes(view[start:start + SLICE]), final=False)
            view.release()
            del self._buf[:cut]

    def _submit(self, data: bytes, final: bool) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        zdict, self._tail = self._tail, data[-_WINDOW:]
        if self._pool is None:
            self.out.write(_deflate_slice(data, zdict, self.level, final))
            return
        self._pending.append(self._pool.submit(_deflate_slice, data, zdict, self.level, final))
        while len(self._pending) > self._workers + 1:  # bounds memory: ~2 MiB a slice
            self.out.write(self._pending.popleft().result())

    def close(self) -> None:
        try:
            self._submit(bytes(self._buf), final=True)
            while self._pending:
                self.out.write(self._pending.popleft().result())
        finally:
            self.abort()
        self.out.write(struct.pack("<II", self.crc, self.length & 0xFFFFFFFF))

    def abort(self) -> None:
        """Stop the worker threads (also after an error)."""
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None


def _incompressible(data: bytes) -> bool:
    """True when four samples spread over ``data`` all compress by less than 3%."""
    if len(data) < 4 * _SAMPLE:
        return False
    step = len(data) // 4
    for i in range(4):
        sample = data[i * step:i * step + _SAMPLE]
        if len(zlib.compress(sample, 1)) < 0.97 * len(sample):
            return False
    return True


def _deflate_slice(data: bytes, zdict: bytes, level: int, final: bool) -> bytes:
    if level > 0 and _incompressible(data):
        level, zdict = 0, b""
    if zdict:
        z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=zdict)
    else:
        z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return z.compress(data) + z.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def _header(entry: Entry | None) -> bytes:
    info = tarfile.TarInfo(TOP_FOLDER if entry is None else f"{TOP_FOLDER}/{entry.path}")
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry is None or entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "link":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.link or ""
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, entry.mode, entry.size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_archive(listing: FileListing, out_dir: str | os.PathLike, *,
                  level: int = COMPRESSION_LEVEL, progress: Progress | None = None,
                  workers: int | None = None) -> WriteResult:
    """Pack ``listing`` into ``out_dir/<sha256>.tar.gz`` and return its path, hash and size.

    The archive is written to a temporary file in ``out_dir`` and renamed into place once
    complete, so a crash never leaves a truncated archive under a content-addressed name.
    ``workers`` compression threads (default: up to 4, one per CPU) never change the bytes.
    Raises :class:`PackagingError` if a file cannot be read or changes while it is packed.
    """
    os.makedirs(out_dir, exist_ok=True)
    total = listing.total_bytes
    done = 0
    if progress:
        progress(0, total)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".partial-", suffix=".tar.gz")
    gz = None
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK) as raw:
            hashed = _HashingWriter(raw)
            gz = _GzipWriter(hashed, level, workers)
            written = _BLOCK  # bytes of tar stream so far, for the final record padding
            gz.write(_header(None))
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            root = str(listing.root)
            records: list[FileRecord] = []
            for entry in listing.entries:
                header = _header(entry)
                gz.write(header)
                written += len(header)
                if entry.kind != "file":
                    continue
                file_digest = FileDigest(entry.path)
                done = _copy_file(os.path.join(root, entry.path), entry, gz, view, done, total,
                                  progress, file_digest)
                records.append(file_digest.record())
                pad = -entry.size % _BLOCK
                if pad:
                    gz.write(bytes(pad))
                written += entry.size + pad
            end = 2 * _BLOCK
            end += -(written + end) % _RECORD
            gz.write(bytes(end))
            gz.close()
        os.chmod(tmp, 0o644)
        digest = hashed.sha.hexdigest()
        final = os.path.join(out_dir, f"{digest}.tar.gz")
        _settle(tmp, final)
    except BaseException:
        if gz is not None:
            gz.abort()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return WriteResult(path=final, sha256=digest, size=hashed.size, records=records)


def _copy_file(path: str, entry: Entry, gz: _GzipWriter, view: memoryview, done: int,
               total: int, progress: Progress | None, digest: FileDigest) -> int:
    remaining = entry.size
    try:
        with open(path, "rb", buffering=0) as f:
            while remaining:
                n = f.readinto(view[:min(CHUNK, remaining)])
                if not n:
                    break
                gz.write(view[:n])
                digest.update(view[:n])
                remaining -= n
                done += n
                if progress:
                    progress(done, total)
            extra = f.read(1)
    except OSError as exc:
        raise PackagingError(f"Cannot read {path}: {exc.strerror or exc}.",
                             hint=f"Make it readable, or add '{entry.path}' to .mlflowignore.") \
            from exc
    if remaining or extra:
        raise PackagingError(
            f"{path} changed size while it was being packaged "
            f"({entry.size} bytes when listed).",
            hint="Wait for whatever writes it to finish, or add it to .mlflowignore, "
                 "then try again.")
    return done


def _settle(tmp: str, final: str) -> None:
    """Put the archive at its content's name. One already there is the same bytes and is
    kept, with its timestamp, which a concurrent build may have recorded in its cache."""
    try:
        os.link(tmp, final)  # atomic, and refuses to replace
    except FileExistsError:
        if os.path.getsize(final) != os.path.getsize(tmp):  # damaged since: replaced
            os.replace(tmp, final)
            return
    except OSError:  # a file system without hard links
        os.replace(tmp, final)
        return
    os.unlink(tmp)
