"""Where the project archive goes on Databricks, and how it gets there.

Three code locations, in the order a user would want them:

* a **Unity Catalog volume** (``--code-location /Volumes/cat/schema/vol/path``), through the
  Files API: one streamed ``PUT`` per file, up to 5 GiB;
* **workspace files** under ``/Workspace/Users/<you>/.mlrun_magic/projects`` (the default
  when the archive fits the 10 MB import limit), through ``workspace/import``;
* the **DBFS root** (``dbfs:/mlflow-experiments/<experiment>/projects-code``, MLflow's own
  layout), streamed with ``create``/``add-block``/``close`` in 1 MiB blocks. New workspaces
  have no DBFS root: that case ends in an error that says to use a volume.

Archives are named by their SHA-256, so the existence check that comes first turns an
unchanged project into an upload of zero bytes.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from mlrun_magic.databricks import locations
from mlrun_magic.databricks.locations import CodeLocationError
from mlrun_magic.databricks.errors import AlreadyExists, NotFound, PermissionDenied
from mlrun_magic.errors import MlrunMagicError

logger = logging.getLogger("mlrun_magic.databricks.storage")

WORKSPACE_IMPORT_LIMIT = 10 * 1024 * 1024  # bytes of base64 content per workspace/import
DBFS_BLOCK = 1024 * 1024  # raw bytes per add-block


@dataclass
class Target:
    """A code location: ``kind`` (``volume``, ``workspace`` or ``dbfs``) and its folder."""

    kind: str
    folder: str  # as the API names it: /Volumes/..., /Workspace/..., dbfs:/...

    def remote(self, name: str) -> str:
        return f"{self.folder.rstrip('/')}/{name}"

    @staticmethod
    def posix(path: str) -> str:
        """How the driver opens ``path``: ``dbfs:/x`` is ``/dbfs/x`` through FUSE."""
        return "/dbfs/" + path[len("dbfs:/"):] if path.startswith("dbfs:/") else path


@dataclass
class Uploaded:
    """What :func:`upload_project` did: remote paths, bytes sent, files skipped."""

    target: Target
    archive: str
    bootstrap: str
    uploaded_bytes: int
    skipped: list[str]


def parse_location(value: str) -> Target:
    """A :class:`Target` from ``--code-location`` (read by :mod:`.locations`)."""
    value = locations.checked(value)
    if value.startswith("/Volumes/"):
        parts = value.split("/")
        if len(parts) < 5 or not all(parts[2:5]):
            raise CodeLocationError(
                f"{value} is not a volume path", hint="Use /Volumes/<catalog>/<schema>/<volume>"
                "[/folder].")
        return Target("volume", value)
    if value.startswith(("/Workspace/", "/Users/", "/Shared/")):
        folder = value if value.startswith("/Workspace/") else "/Workspace" + value
        return Target("workspace", folder)
    if value.startswith(("dbfs:/", "/dbfs/")):
        return Target("dbfs", "dbfs:/" + value.split("/", 2)[2] if value.startswith("/dbfs/")
                      else value)
    raise CodeLocationError(f"code location {value!r} is not a volume, workspace or DBFS path",
                            hint="Use /Volumes/<catalog>/<schema>/<volume>/..., "
                                 "/Workspace/Users/<you>/..., or dbfs:/....")


def default_target(client, archive_size: int, experiment_id: str) -> Target:
    """Workspace files when the archive fits their import limit, else the DBFS root."""
    if _b64_size(archive_size) <= WORKSPACE_IMPORT_LIMIT:
        user, _ = client.me()
        return Target("workspace", f"/Workspace/Users/{user}/.mlrun_magic/projects")
    return Target("dbfs", f"dbfs:/mlflow-experiments/{experiment_id}/projects-code")


def upload_project(client, target: Target, archive_path: Path, sha256: str,
                   bootstrap: bytes, bootstrap_name: str, progress=None) -> Uploaded:
    """Upload the archive (named ``<sha256>.tar.gz``) and the bootstrap, skipping what exists."""
    archive_remote = target.remote(f"{sha256}.tar.gz")
    bootstrap_remote = target.remote(bootstrap_name)
    writer = {"volume": _Volume, "workspace": _WorkspaceFiles, "dbfs": _Dbfs}[target.kind](client)
    sent = 0
    skipped = []
    try:
        writer.mkdirs(target.folder)
        for remote, opener, size in (
                (archive_remote, lambda: open(archive_path, "rb"), archive_path.stat().st_size),
                (bootstrap_remote, lambda: io.BytesIO(bootstrap), len(bootstrap))):
            if writer.exists(remote):
                skipped.append(remote)
                logger.info("=== %s already exists; not uploaded again ===", remote)
                continue
            logger.info("=== Uploading %s (%d KB) to %s ===", Path(remote).name, size // 1024,
                        remote)
            with opener() as stream:
                writer.put(remote, stream, size, progress if remote == archive_remote else None)
            sent += size
    except PermissionDenied as exc:
        if "DBFS root" in exc.api_message or target.kind == "dbfs":
            raise CodeLocationError(
                f"cannot write to {target.folder}: {exc.api_message}",
                hint="This workspace has no usable DBFS root. Upload to a Unity Catalog volume: "
                     "--code-location /Volumes/<catalog>/<schema>/<volume>/mlrun_magic "
                     "(or %config ProjectRun.code_location = '/Volumes/...').") from None
        raise CodeLocationError(f"no permission to write to {target.folder}: {exc.api_message}",
                                hint="Ask for WRITE VOLUME (volumes) or pick a folder you own "
                                     "with --code-location.") from None
    return Uploaded(target, archive_remote, bootstrap_remote, sent, skipped)


def _b64_size(n: int) -> int:
    return 4 * ((n + 2) // 3)


class _Volume:
    """Unity Catalog volume files through the Files API."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _path(path: str) -> str:
        from urllib.parse import quote

        return quote(path)

    def mkdirs(self, folder: str) -> None:
        self.client.call("PUT", "/api/2.0/fs/directories" + self._path(folder), raw=True)

    def exists(self, path: str) -> bool:
        try:
            self.client.call("HEAD", "/api/2.0/fs/files" + self._path(path), raw=True)
            return True
        except NotFound:
            return False

    def put(self, path: str, stream, size: int, progress) -> None:
        body = _Progress(stream, size, progress) if progress else stream
        try:
            self.client.call("PUT", "/api/2.0/fs/files" + self._path(path), data=body, raw=True,
                             params={"overwrite": "false"},
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(size)})
        except AlreadyExists:
            pass  # content-addressed: someone uploaded the same bytes meanwhile


class _WorkspaceFiles:
    """Workspace files through workspace/import (base64 JSON, streamed)."""

    def __init__(self, client):
        self.client = client

    def mkdirs(self, folder: str) -> None:
        self.client.call("POST", "/api/2.0/workspace/mkdirs", json={"path": folder},
                         idempotent=True)

    def exists(self, path: str) -> bool:
        try:
            self.client.call("GET", "/api/2.0/workspace/get-status", params={"path": path})
            return True
        except NotFound:
            return False

    def put(self, path: str, stream, size: int, progress) -> None:
        if _b64_size(size) > WORKSPACE_IMPORT_LIMIT:
            raise CodeLocationError(
                f"{Path(path).name} is {size // 1024} KB, over the 10 MB workspace import limit",
                hint="Use a volume: --code-location /Volumes/<catalog>/<schema>/<volume>/...")
        body = _JsonImportBody(path, _Progress(stream, size, progress) if progress else stream, size)
        try:
            self.client.call("POST", "/api/2.0/workspace/import", data=body, idempotent=True,
                             headers={"Content-Type": "application/json",
                                      "Content-Length": str(len(body))})
        except AlreadyExists:
            pass


class _Dbfs:
    """The DBFS root through the streaming create/add-block/close API."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _api_path(path: str) -> str:
        return path[len("dbfs:"):] if path.startswith("dbfs:") else path

    def mkdirs(self, folder: str) -> None:
        self.client.call("POST", "/api/2.0/dbfs/mkdirs", json={"path": self._api_path(folder)},
                         idempotent=True)

    def exists(self, path: str) -> bool:
        try:
            self.client.call("GET", "/api/2.0/dbfs/get-status", params={"path": self._api_path(path)})
            return True
        except NotFound:
            return False

    def put(self, path: str, stream, size: int, progress) -> None:
        # add-block is not idempotent: on failure the whole file is written again from scratch.
        for attempt in range(3):
            stream.seek(0)
            try:
                self._put_once(self._api_path(path), stream, size, progress)
                return
            except (MlrunMagicError, OSError) as exc:
                if attempt == 2 or isinstance(exc, PermissionDenied):
                    raise
                logger.info("DBFS upload of %s failed (%s); starting it again", path, exc)

    def _put_once(self, path: str, stream, size: int, progress) -> None:
        handle = self.client.call("POST", "/api/2.0/dbfs/create",
                                  json={"path": path, "overwrite": True}, idempotent=True)["handle"]
        done = 0
        while True:
            block = stream.read(DBFS_BLOCK)
            if not block:
                break
            self.client.call("POST", "/api/2.0/dbfs/add-block", idempotent=False,
                             json={"handle": handle, "data": base64.b64encode(block).decode()})
            done += len(block)
            if progress:
                progress(done, size)
        self.client.call("POST", "/api/2.0/dbfs/close", json={"handle": handle}, idempotent=False)
        # A block whose answer was lost (and retried after a 429) would be in the file twice.
        stored = self.client.call("GET", "/api/2.0/dbfs/get-status", params={"path": path})
        if stored.get("file_size") != size:
            raise CodeLocationError(f"{path} has {stored.get('file_size')} bytes after the "
                                    f"upload instead of {size}")


class _Progress(io.RawIOBase):
    """A read-only stream that reports bytes read to ``progress(done, total)``."""

    def __init__(self, stream, total: int, progress):
        self.stream, self.total, self.progress, self.done = stream, total, progress, 0

    def readable(self):
        return True

    def read(self, size=-1):
        data = self.stream.read(size)
        self.done += len(data)
        self.progress(self.done, self.total)
        return data

    def seekable(self):
        return True

    def seek(self, pos, whence=0):
        self.done = 0 if pos == 0 else self.done
        return self.stream.seek(pos, whence)

    def tell(self):
        return self.stream.tell()


class _JsonImportBody(io.RawIOBase):
    """``{"path", "format", "overwrite", "content": base64}`` produced in chunks, never whole."""

    def __init__(self, path: str, stream, size: int):
        import json

        head = json.dumps({"path": path, "format": "AUTO", "overwrite": False})[:-1]
        self.head = (head + ', "content": "').encode()
        self.tail = b'"}'
        self.stream, self.size = stream, size
        self._buffer = b""
        self._stage = 0
        self._start = stream.tell()

    def __len__(self):
        return len(self.head) + _b64_size(self.size) + len(self.tail)

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return 0 if self._stage == 0 and not self._buffer else -1

    def seek(self, pos, whence=0):
        if pos != 0 or whence != 0:
            raise io.UnsupportedOperation("only rewinding is supported")
        self.stream.seek(self._start)
        self._buffer, self._stage = b"", 0
        return 0

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        while len(self._buffer) < size and self._stage < 3:
            if self._stage == 0:
                self._buffer += self.head
                self._stage = 1
            elif self._stage == 1:
                chunk = self.stream.read(3 * 16384)  # multiple of 3: no padding mid-stream
                if chunk:
                    self._buffer += base64.b64encode(chunk)
                else:
                    self._stage = 2
            else:
                self._buffer += self.tail
                self._stage = 3
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out
