"""DBFS: the ``/api/2.0/dbfs`` API and MLflow's legacy raw upload route ``POST /dbfs/<path>``.

``settings.dbfs_root_disabled`` makes every DBFS call answer 403 ``PERMISSION_DENIED``
"DBFS root is disabled", as new workspaces do.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from mlrun_magic.testing.http import (ApiError, Request, Response, as_bool, as_int, bad_request,
                                      not_found, required, route)
from mlrun_magic.testing.paths import PathError, dbfs_relative
from mlrun_magic.testing.storage import write_atomically

BLOCK_LIMIT = 1024 * 1024
READ_LIMIT = 1024 * 1024
READ_DEFAULT = 512 * 1024

_HTML_409 = ("<html><head><title>Error 409 File already exists</title></head><body>"
             "<h2>HTTP ERROR 409</h2><p>Problem accessing {path}. Reason:<pre>    File already "
             "exists</pre></p></body></html>")


@dataclass
class _Handle:
    target: Path
    partial: Path
    last_used: float


class Dbfs:
    """Routes of the DBFS API and the legacy ``/dbfs/<path>`` upload."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self._lock = threading.Lock()
        self._handles: dict[int, _Handle] = {}
        self._ids = itertools.count(int(time.time()) % 100000 * 1000 + 1)

    @property
    def root(self) -> Path:
        return self.ws.storage_root / "dbfs"

    def reset(self) -> None:
        with self._lock:
            for handle in self._handles.values():
                handle.partial.unlink(missing_ok=True)
            self._handles.clear()

    def routes(self) -> list:
        api = r"/api/2\.0/dbfs/"
        return [
            route("GET", api + "get-status", self.get_status),
            route("POST", api + "mkdirs", self.mkdirs),
            route("POST", api + "put", self.put),
            route("POST", api + "create", self.create),
            route("POST", api + "add-block", self.add_block),
            route("POST", api + "close", self.close),
            route("GET", api + "read", self.read),
            route("POST", api + "delete", self.delete),
            route("GET", api + "list", self.list),
            route("POST", api + "move", self.move),
            route("POST|PUT", r"/dbfs(?P<path>/.+)", self.legacy_upload),
        ]

    def _enabled(self) -> None:
        if self.ws.settings.dbfs_root_disabled:
            raise ApiError(403, "PERMISSION_DENIED", "DBFS root is disabled.")

    def _path(self, params: dict, name: str = "path") -> tuple[str, Path]:
        self._enabled()
        raw = required(params, name)
        if not isinstance(raw, str):
            raise bad_request(f"Invalid value for parameter {name}: expected a string")
        try:
            path = dbfs_relative(raw)
        except PathError as exc:
            raise bad_request(str(exc)) from None
        return path, self.root / path.lstrip("/")

    @staticmethod
    def _missing(path: str) -> ApiError:
        return not_found(f"No file or directory exists on path {path}.")

    @staticmethod
    def _info(path: str, target: Path) -> dict:
        stat = target.stat()
        return {"path": path, "is_dir": target.is_dir(),
                "file_size": 0 if target.is_dir() else stat.st_size,
                "modification_time": int(stat.st_mtime * 1000)}

    def _prepare_file(self, path: str, target: Path, overwrite: bool) -> None:
        if target.is_dir():
            raise bad_request(f"A directory already exists at the input path {path}.",
                              "RESOURCE_ALREADY_EXISTS")
        if target.exists() and not overwrite:
            raise bad_request(f"A file or directory already exists at the input path {path}.",
                              "RESOURCE_ALREADY_EXISTS")
        self._mkdirs(path, target.parent)

    def _mkdirs(self, path: str, target: Path) -> None:
        for parent in [*reversed(target.parents), target]:
            if (self.root in parent.parents or parent == self.root) and parent.is_file():
                raise bad_request(f"Cannot create directory for {path}: a file exists at "
                                  f"/{parent.relative_to(self.root)}", "RESOURCE_ALREADY_EXISTS")
        target.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _decode(data, name: str) -> bytes:
        try:
            return base64.b64decode(data or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise bad_request(f"The {name} field is not valid base64.") from None

    # -- routes -----------------------------------------------------------------------------

    def get_status(self, req: Request) -> Response:
        path, target = self._path(req.params())
        if not target.exists():
            raise self._missing(path)
        return Response.json(self._info(path, target))

    def list(self, req: Request) -> Response:
        path, target = self._path(req.params())
        if not target.exists():
            raise self._missing(path)
        if not target.is_dir():
            return Response.json({"files": [self._info(path, target)]})
        files = [self._info(f"{path.rstrip('/')}/{child.name}", child)
                 for child in sorted(target.iterdir()) if not child.name.startswith(".upload-")]
        return Response.json({"files": files} if files else {})

    def mkdirs(self, req: Request) -> Response:
        path, target = self._path(req.json())
        self._mkdirs(path, target)
        return Response.json({})

    def put(self, req: Request) -> Response:
        if (req.headers.get("Content-Type") or "").startswith("multipart/"):
            self._enabled()
            raise bad_request("The multipart form of dbfs/put is not emulated; send JSON "
                              "contents or use create/add-block/close.")
        params = req.json()
        path, target = self._path(params)
        contents = self._decode(params.get("contents"), "contents")
        if len(contents) > BLOCK_LIMIT:
            raise bad_request(f"The contents are {len(contents)} bytes; the maximum is "
                              f"{BLOCK_LIMIT} bytes. Use create/add-block/close.",
                              "MAX_BLOCK_SIZE_EXCEEDED")
        self._prepare_file(path, target, as_bool(params.get("overwrite"), "overwrite"))
        partial = target.with_name(f".upload-{target.name}")
        partial.write_bytes(contents)
        os.replace(partial, target)
        return Response.json({})

    def create(self, req: Request) -> Response:
        params = req.json()
        path, target = self._path(params)
        self._prepare_file(path, target, as_bool(params.get("overwrite"), "overwrite"))
        fd, partial = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        os.close(fd)
        with self._lock:
            handle = next(self._ids)
            self._handles[handle] = _Handle(target, Path(partial), time.monotonic())
        return Response.json({"handle": handle})

    def _handle(self, params: dict) -> tuple[int, _Handle]:
        self._enabled()
        number = as_int(required(params, "handle"), "handle")
        with self._lock:
            handle = self._handles.get(number)
            if handle is not None and (time.monotonic() - handle.last_used
                                       > self.ws.settings.dbfs_handle_ttl):
                del self._handles[number]
                handle.partial.unlink(missing_ok=True)
                handle = None
            if handle is None:
                raise not_found(f"Handle {number} does not exist or has expired.")
            handle.last_used = time.monotonic()
        return number, handle

    def add_block(self, req: Request) -> Response:
        params = req.json()
        _, handle = self._handle(params)
        data = self._decode(params.get("data"), "data")
        if len(data) > BLOCK_LIMIT:
            raise bad_request(f"The block is {len(data)} bytes; the maximum is {BLOCK_LIMIT}.",
                              "MAX_BLOCK_SIZE_EXCEEDED")
        with open(handle.partial, "ab") as out:
            out.write(data)
        return Response.json({})

    def close(self, req: Request) -> Response:
        number, handle = self._handle(req.json())
        with self._lock:
            self._handles.pop(number, None)
        os.replace(handle.partial, handle.target)
        return Response.json({})

    def read(self, req: Request) -> Response:
        params = req.params()
        path, target = self._path(params)
        offset = as_int(params.get("offset", 0), "offset")
        length = as_int(params.get("length", READ_DEFAULT), "length")
        if offset < 0 or length < 0:
            raise bad_request("offset and length must not be negative.")
        if length > READ_LIMIT:
            raise bad_request(f"length {length} is above the maximum of {READ_LIMIT} bytes.",
                              "MAX_READ_SIZE_EXCEEDED")
        if not target.exists():
            raise self._missing(path)
        if target.is_dir():
            raise bad_request(f"Cannot read a directory: {path}")
        with open(target, "rb") as src:
            src.seek(offset)
            data = src.read(length)
        return Response.json({"bytes_read": len(data), "data": base64.b64encode(data).decode()})

    def delete(self, req: Request) -> Response:
        params = req.json()
        path, target = self._path(params)
        if not target.exists():
            raise self._missing(path)
        if target.is_dir():
            if any(target.iterdir()) and not as_bool(params.get("recursive"), "recursive"):
                raise bad_request(f"Cannot delete non-empty directory {path} without "
                                  "recursive=true.", "IO_ERROR")
            if target == self.root:
                raise bad_request("Cannot delete the DBFS root.")
            shutil.rmtree(target)
        else:
            target.unlink()
        return Response.json({})

    def move(self, req: Request) -> Response:
        params = req.json()
        source, source_file = self._path(params, "source_path")
        dest, dest_file = self._path(params, "destination_path")
        if not source_file.exists():
            raise self._missing(source)
        if dest_file.exists():
            raise bad_request(f"A file or directory already exists at {dest}.",
                              "RESOURCE_ALREADY_EXISTS")
        self._mkdirs(dest, dest_file.parent)
        os.replace(source_file, dest_file)
        return Response.json({})

    def legacy_upload(self, req: Request) -> Response:
        """MLflow's undocumented raw-body upload to ``https://<host>/dbfs/<path>``."""
        raw = unquote(req.match["path"])
        path, target = self._path({"path": raw})
        if target.exists():
            return Response(409, _HTML_409.format(path="/dbfs" + path).encode(),
                            {"Content-Type": "text/html;charset=utf-8"})
        self._mkdirs(path, target.parent)
        write_atomically(req, target)
        return Response.json({})
