"""Reading a Databricks run's live log while it runs (the client side of the bootstrap's
:class:`~mlrun_magic.databricks.bootstrap.LogTail`).

The contract, written by the bootstrap on the driver, in the run's folder next to the
project archive, ``<code location>/logs/<MLflow run id>/``:

* ``<seq:08d>-<bytes>.log``, ``seq`` from 1: immutable chunks of the driver's stdout and
  stderr (at most 64 KiB each, at most 2 s apart while something is printed), each written
  once, whole. A chunk is complete when its size is the ``<bytes>`` of its name; a listing or
  a read that shows fewer bytes is one being written: it is read again next time, unless a
  later chunk or the end marker exists (then it was cut for good: what it has is read).
* Only the last 50 MB are kept: older chunks are deleted. A reader that finds a gap in the
  sequence says so in its text (one ``[mlrun_magic]`` line) and goes on.
* ``end.json`` (``{"chunks", "bytes", "dropped_bytes", "status", "exit_code"}``), written
  after the last chunk: nothing more will come.

:class:`ChunkReader` lists the folder once per :meth:`~ChunkReader.read_new` (one request)
and fetches only the chunks it has not read, each once, at most
:data:`MAX_CHUNKS_PER_READ` per call (a reader of a long run catches up over several): through the Files API for a volume,
``workspace/export`` for workspace files, ``dbfs/read`` (offset/length pages of 1 MB) for
DBFS. Text is decoded as UTF-8 with the bytes of a character split between two chunks
carried over, so nothing is lost or doubled at a boundary.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from typing import NamedTuple
from urllib.parse import quote

from mlrun_magic.databricks.errors import NotFound
from mlrun_magic.databricks.storage import Target, parse_location

CHUNK_NAME = re.compile(r"^(\d{8})-(\d+)\.log$")
END_NAME = "end.json"
DBFS_READ = 1024 * 1024
END_LIMIT = 65536  # bytes of end.json read at most
MAX_CHUNKS_PER_READ = 128  # chunks fetched by one read_new (8 MB at most)
GAP_NOTICE = ("[mlrun_magic] earlier output was dropped here (the live log keeps the last "
              "50 MB; the driver log has all of it)\n")
CUT_NOTICE = ("\n[mlrun_magic] output is missing here (a chunk of the live log was cut when it "
              "was written; the driver log has all of it)\n")


class LogUpdate(NamedTuple):
    """What one read found: the new ``text``, whether the log has ``ended`` and its end
    marker (``end``: ``status``, ``exit_code``, ``chunks``, ``bytes``, ``dropped_bytes``)."""

    text: str
    ended: bool
    end: dict | None


def log_folder(target: Target, mlflow_run_id: str) -> str:
    """The run's log folder as the storage API names it."""
    return target.remote(f"logs/{mlflow_run_id}")


def run_location(job_run: dict) -> Target | None:
    """The code location of a job run submitted by mlrun_magic (from its bootstrap's
    ``--archive`` parameter), or None for any other job run."""
    for task in job_run.get("tasks") or []:
        params = ((task or {}).get("spark_python_task") or {}).get("parameters") or []
        if "--archive" in params and params.index("--archive") + 1 < len(params):
            archive = str(params[params.index("--archive") + 1])
            try:
                return parse_location(archive.rsplit("/", 1)[0])
            except Exception:  # noqa: BLE001 (not one of ours: no live log)
                return None
    return None


class ChunkReader:
    """Reads the new part of a run's live log on each :meth:`read_new`, never twice."""

    def __init__(self, client, location: Target | str, mlrun_run_id: str):
        target = parse_location(location) if isinstance(location, str) else location
        self.folder = log_folder(target, mlrun_run_id)
        self.store = {"volume": _Volume, "workspace": _Workspace, "dbfs": _Dbfs}[target.kind](
            client)
        self.next_seq = 1
        self.end: dict | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read_new(self) -> LogUpdate:
        """The text published since the last call (one listing, plus one read per new
        chunk); ``ended`` once the end marker is there and every chunk before it was read."""
        if self.end is not None:
            return LogUpdate("", True, self.end)
        listing = self.store.list(self.folder)
        parts: list[str] = []
        complete, budget = True, MAX_CHUNKS_PER_READ
        chunks = sorted(_chunks(listing))
        last = max((seq for seq, _, _ in chunks), default=0)
        for seq, size, name in chunks:
            if seq < self.next_seq:
                continue
            if budget == 0:
                complete = False  # a long run read afresh: the rest on the next calls
                break
            budget -= 1
            # Chunks are written one at a time: one followed by another or by the end marker
            # will never grow (its writer was killed or failed): what it has is read.
            final = seq < last or END_NAME in listing
            listed = listing[name]
            data = b"" if listed == 0 and final else \
                None if listed is not None and listed < size and not final else \
                self.store.read(f"{self.folder}/{name}", size)
            if data is False:  # deleted since the listing (older than the last 50 MB)
                continue
            if data is None or len(data) < size and not final:
                complete = False  # still being written: next time
                break
            if seq > self.next_seq:
                parts.append(self._gap())
            parts.append(self._decoder.decode(data[:size]))
            if len(data) < size:
                parts.append(self._decoder.decode(b"", final=True) + CUT_NOTICE)
                self._decoder.reset()
            self.next_seq = seq + 1
        if complete and END_NAME in listing:
            self.end = self._read_end(listing[END_NAME])
            if self.end is not None:
                parts.append(self._decoder.decode(b"", final=True))
        return LogUpdate("".join(parts), self.end is not None, self.end)

    def _gap(self) -> str:
        lost = self._decoder.decode(b"", final=True)  # a character cut by the gap
        self._decoder.reset()
        return lost + GAP_NOTICE

    def _read_end(self, listed: int | None) -> dict | None:
        """The end marker; None while it is still being written (empty or cut JSON)."""
        if listed == 0:
            return None
        data = self.store.read(f"{self.folder}/{END_NAME}", min(listed or END_LIMIT, END_LIMIT))
        try:
            end = json.loads(data or b"")
        except ValueError:
            return {} if listed is not None and listed > END_LIMIT else None
        return end if isinstance(end, dict) else {}


def _chunks(listing: dict):
    for name in listing:
        match = CHUNK_NAME.match(name)
        if match:
            yield int(match[1]), int(match[2]), name


class _Volume:
    """A volume folder through the Files API (``fs/directories`` list, ``fs/files`` get)."""

    def __init__(self, client):
        self.client = client

    def list(self, folder: str) -> dict:
        found, token = {}, None
        while True:
            try:
                page = self.client.call("GET", "/api/2.0/fs/directories" + quote(folder),
                                        params={"page_token": token} if token else None)
            except NotFound:
                return found
            for item in page.get("contents") or []:
                if not item.get("is_directory"):
                    found[item.get("name") or item["path"].rsplit("/", 1)[-1]] = \
                        item.get("file_size")
            token = page.get("next_page_token")
            if not token:
                return found

    def read(self, path: str, size: int | None):
        headers = {"Range": f"bytes=0-{size - 1}"} if size else None  # never more than named
        try:
            return self.client.call("GET", "/api/2.0/fs/files" + quote(path), raw=True,
                                    headers=headers).content
        except NotFound:
            return False


class _Workspace:
    """Workspace files through ``workspace/list`` and ``workspace/export``."""

    def __init__(self, client):
        self.client = client

    def list(self, folder: str) -> dict:
        try:
            objects = self.client.call("GET", "/api/2.0/workspace/list", params={"path": folder}).get("objects")
        except NotFound:
            return {}
        return {o["path"].rsplit("/", 1)[-1]: o.get("size") for o in objects or []
                if o.get("object_type") != "DIRECTORY"}

    def read(self, path: str, size: int | None):
        try:
            out = self.client.call("GET", "/api/2.0/workspace/export",
                                   params={"path": path, "format": "SOURCE"})
        except NotFound:
            return False
        return base64.b64decode(out.get("content") or "")


class _Dbfs:
    """A DBFS folder through ``dbfs/list`` and ``dbfs/read`` (offset/length, 1 MB pages)."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _api(path: str) -> str:
        return path[len("dbfs:"):] if path.startswith("dbfs:") else path

    def list(self, folder: str) -> dict:
        try:
            files = self.client.call("GET", "/api/2.0/dbfs/list",
                                    params={"path": self._api(folder)}).get("files")
        except NotFound:
            return {}
        return {f["path"].rsplit("/", 1)[-1]: f.get("file_size") for f in files or []
                if not f.get("is_dir")}

    def read(self, path: str, size: int | None):
        data = b""
        while size is None or len(data) < size:
            try:
                page = self.client.call("GET", "/api/2.0/dbfs/read", params={
                    "path": self._api(path), "offset": len(data),
                    "length": DBFS_READ if size is None else min(DBFS_READ, size - len(data))})
            except NotFound:
                return False
            block = base64.b64decode(page.get("data") or "")
            data += block
            if not block or size is None and len(block) < DBFS_READ:
                break
        return data
