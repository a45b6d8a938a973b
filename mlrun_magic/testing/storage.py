"""Unity Catalog volumes through the Files API, and workspace files.

Files live under the workspace's storage folder (see :mod:`mlrun_magic.testing.paths`);
uploads stream to disk, so a 300 MB archive never sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote

from mlrun_magic.testing.http import (ApiError, Request, Response, as_bool, bad_request,
                                      not_found, required, route)
from mlrun_magic.testing.paths import PathError, local_path, workspace_relative

WORKSPACE_IMPORT_LIMIT = 10 * 1024 * 1024
IMPORT_FORMATS = ("AUTO", "SOURCE", "HTML", "JUPYTER", "DBC", "R_MARKDOWN", "RAW")
LANGUAGES = ("PYTHON", "SCALA", "SQL", "R")


def _files_not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The file being accessed is not found.")


def write_atomically(req: Request, target: Path) -> None:
    """Stream the request body next to ``target`` and move it into place."""
    fd, partial = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    os.close(fd)
    try:
        req.save_body(Path(partial))
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def make_parents(target: Path, stop: Path) -> None:
    """``mkdir -p`` of ``target``'s parent; a file in the way is a 409."""
    for parent in reversed(target.parents):
        if stop not in parent.parents and parent != stop:
            continue
        if parent.exists() and not parent.is_dir():
            raise ApiError(409, "ALREADY_EXISTS",
                           f"A file exists where a directory is needed: {parent.name}")
    target.parent.mkdir(parents=True, exist_ok=True)


DIRECTORY_PAGE = 1000  # entries per fs/directories page, as Databricks


class Storage:
    """Routes of the Files API (``/api/2.0/fs``) and the Workspace API (``/api/2.0/workspace``)."""

    def __init__(self, workspace) -> None:
        self.ws = workspace

    @property
    def root(self) -> Path:
        return self.ws.storage_root

    def reset(self) -> None:
        """Empty storage and recreate what a fresh workspace has: /Users/<me>, /Shared."""
        for area in ("Volumes", "Workspace", "dbfs"):
            shutil.rmtree(self.root / area, ignore_errors=True)
            (self.root / area).mkdir(parents=True, exist_ok=True)
        (self.root / "Workspace" / "Users" / self.ws.user_name).mkdir(parents=True)
        (self.root / "Workspace" / "Shared").mkdir(parents=True)

    def routes(self) -> list:
        return [
            route("PUT|GET|HEAD|DELETE", r"/api/2\.0/fs/files(?P<path>/.*)", self.files),
            route("PUT|GET|HEAD|DELETE", r"/api/2\.0/fs/directories(?P<path>/.*)",
                  self.directories),
            route("POST", r"/api/2\.0/workspace/mkdirs", self.ws_mkdirs),
            route("POST", r"/api/2\.0/workspace/import", self.ws_import),
            route("GET", r"/api/2\.0/workspace/get-status", self.ws_get_status),
            route("GET", r"/api/2\.0/workspace/list", self.ws_list),
            route("GET", r"/api/2\.0/workspace/export", self.ws_export),
            route("POST", r"/api/2\.0/workspace/delete", self.ws_delete),
        ]

    # -- Files API --------------------------------------------------------------------------

    def _volume_path(self, req: Request, need_file: bool) -> Path:
        raw = unquote(req.match["path"])
        parts = raw.strip("/").split("/")
        minimum = 5 if need_file else 4
        if parts[0] != "Volumes" or len(parts) < minimum or "" in parts or ".." in parts:
            raise bad_request(f"Invalid path {raw!r}: expected /Volumes/<catalog>/<schema>/"
                              f"<volume>/{'<path>' if need_file else '[<path>]'}")
        self.ws.catalog.require_volume_path(parts)
        try:
            target = local_path(raw, self.root)
        except PathError as exc:
            raise bad_request(str(exc)) from None
        if len(parts) == 4:  # an existing volume's root is a directory, even while empty
            target.mkdir(parents=True, exist_ok=True)
        return target

    def files(self, req: Request) -> Response:
        target = self._volume_path(req, need_file=True)
        if req.method == "PUT":
            overwrite = as_bool(req.query.get("overwrite"), "overwrite", default=True)
            if target.is_dir():
                raise ApiError(409, "ALREADY_EXISTS", "A directory exists at this path.")
            if target.exists() and not overwrite:
                raise ApiError(409, "ALREADY_EXISTS", "The file being created already exists.")
            make_parents(target, self.root / "Volumes")
            write_atomically(req, target)
            return Response.empty(204)
        if not target.is_file():
            raise _files_not_found()
        if req.method == "DELETE":
            target.unlink()
            return Response.empty(204)
        stat = target.stat()
        headers = {"Content-Type": "application/octet-stream",
                   "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
                   "Accept-Ranges": "bytes"}
        if req.method == "HEAD":
            headers["Content-Length"] = str(stat.st_size)
            return Response(200, b"", headers)
        span = _byte_range(req.headers.get("Range"), stat.st_size)
        if span is None:
            return Response(200, b"", headers, file=target, file_range=(0, stat.st_size - 1))
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{stat.st_size}"
        return Response(206, b"", headers, file=target, file_range=span)

    def directories(self, req: Request) -> Response:
        target = self._volume_path(req, need_file=False)
        if req.method == "PUT":
            if target.exists() and not target.is_dir():
                raise ApiError(409, "ALREADY_EXISTS", "A file exists at this path.")
            make_parents(target / "x", self.root / "Volumes")
            return Response.empty(204)
        if not target.is_dir():
            raise not_found("The directory being accessed is not found.", "NOT_FOUND")
        if req.method == "HEAD":
            return Response.empty(200)
        if req.method == "DELETE":
            if any(target.iterdir()):
                raise ApiError(400, "FAILED_PRECONDITION", "The directory is not empty.")
            target.rmdir()
            return Response.empty(204)
        volume_path = unquote(req.match["path"]).rstrip("/")
        contents = []
        for child in sorted(target.iterdir()):
            if child.name.startswith(".upload-"):
                continue
            stat = child.stat()
            item = {"path": f"{volume_path}/{child.name}" + ("/" if child.is_dir() else ""),
                    "name": child.name, "is_directory": child.is_dir(),
                    "last_modified": int(stat.st_mtime * 1000)}
            if not child.is_dir():
                item["file_size"] = stat.st_size
            contents.append(item)
        return Response.json(_page(contents, req.query))

    # -- Workspace files --------------------------------------------------------------------

    def _ws_path(self, params: dict) -> tuple[str, Path]:
        path = required(params, "path")
        if not isinstance(path, str):
            raise bad_request("Invalid value for parameter path: expected a string")
        try:
            return workspace_relative(path), local_path(path if path.startswith("/Workspace")
                                                        else "/Workspace" + path, self.root)
        except PathError as exc:
            raise bad_request(str(exc)) from None

    def ws_mkdirs(self, req: Request) -> Response:
        path, target = self._ws_path(req.json())
        top = self.root / "Workspace"
        for parent in [*reversed(target.parents), target]:
            if top in parent.parents and parent.exists() and not parent.is_dir():
                raise bad_request(f"Cannot create directory {path}: a file exists at "
                                  f"{'/' + str(parent.relative_to(top))}",
                                  "RESOURCE_ALREADY_EXISTS")
        target.mkdir(parents=True, exist_ok=True)
        return Response.json({})

    def ws_import(self, req: Request) -> Response:
        params = req.json()
        path, target = self._ws_path(params)
        fmt = params.get("format", "SOURCE")
        if fmt not in IMPORT_FORMATS:
            raise bad_request(f"Invalid format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
        language = params.get("language")
        if language is not None and language not in LANGUAGES:
            raise bad_request(f"Invalid language {language!r}")
        if fmt == "SOURCE" and language is None:
            raise bad_request("The language field is required when format is SOURCE.")
        try:
            content = base64.b64decode(params.get("content") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise bad_request("The content field is not valid base64.") from None
        if len(content) > WORKSPACE_IMPORT_LIMIT:
            raise bad_request(f"The content is {len(content)} bytes; the maximum allowed size "
                              f"is {WORKSPACE_IMPORT_LIMIT} bytes.", "MAX_NOTEBOOK_SIZE_EXCEEDED")
        if not target.parent.is_dir():
            raise not_found(f"The parent folder ({os.path.dirname(path)}) does not exist.")
        if target.is_dir():
            raise bad_request(f"{path} already exists.", "RESOURCE_ALREADY_EXISTS")
        if target.exists() and not as_bool(params.get("overwrite"), "overwrite"):
            raise bad_request(f"{path} already exists.", "RESOURCE_ALREADY_EXISTS")
        partial = target.with_name(f".upload-{target.name}")
        partial.write_bytes(content)
        os.replace(partial, target)
        return Response.json({})

    def _existing(self, params: dict) -> tuple[str, Path]:
        path, target = self._ws_path(params)
        if not target.exists():
            raise not_found(f"Path ({path}) doesn't exist.")
        return path, target

    def _status(self, path: str, target: Path) -> dict:
        stat = target.stat()
        info = {"path": path, "object_id": stat.st_ino,
                "object_type": "DIRECTORY" if target.is_dir() else "FILE",
                "created_at": int(stat.st_ctime * 1000),
                "modified_at": int(stat.st_mtime * 1000)}
        if not target.is_dir():
            info["size"] = stat.st_size
        return info

    def ws_get_status(self, req: Request) -> Response:
        return Response.json(self._status(*self._existing(req.params())))

    def ws_list(self, req: Request) -> Response:
        path, target = self._existing(req.params())
        if not target.is_dir():
            return Response.json({"objects": [self._status(path, target)]})
        objects = [self._status(f"{path.rstrip('/')}/{child.name}", child)
                   for child in sorted(target.iterdir()) if not child.name.startswith(".upload-")]
        return Response.json({"objects": objects} if objects else {})

    def ws_export(self, req: Request) -> Response:
        path, target = self._existing(req.params())
        if target.is_dir():
            raise bad_request(f"{path} is a directory; export a file.")
        return Response.json({"content": base64.b64encode(target.read_bytes()).decode(),
                              "file_type": "py" if target.suffix == ".py" else ""})

    def ws_delete(self, req: Request) -> Response:
        params = req.json()
        path, target = self._existing(params)
        if target.is_dir():
            if any(target.iterdir()) and not as_bool(params.get("recursive"), "recursive"):
                raise bad_request(f"Folder ({path}) is not empty.", "DIRECTORY_NOT_EMPTY")
            shutil.rmtree(target)
        else:
            target.unlink()
        return Response.json({})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive span of a single ``Range: bytes=a-b`` header, or None for the whole file."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    start_text, _, end_text = header[6:].partition("-")
    try:
        if not start_text:
            length = int(end_text)
            return (max(size - length, 0), size - 1)
        start = int(start_text)
        end = int(end_text) if end_text else size - 1
    except ValueError:
        return None
    if start >= size or start > end:
        raise ApiError(416, "INVALID_PARAMETER_VALUE", f"Range {header} is not satisfiable.")
    return (start, min(end, size - 1))


def _page(contents: list, query: dict) -> dict:
    """One page of a directory listing, as the Files API pages it (``page_size`` at most
    1000, the default; ``next_page_token`` while more follow)."""
    try:
        size = min(int(query.get("page_size") or DIRECTORY_PAGE), DIRECTORY_PAGE)
        start = int(query.get("page_token") or 0)
    except ValueError:
        raise bad_request("Invalid page_size or page_token") from None
    page = {"contents": contents[start:start + size]}
    if start + size < len(contents):
        page["next_page_token"] = str(start + size)
    return page
