"""Can a code location be written? Write a small probe file there and delete it again.

The probe goes through the same writers as the archive (:mod:`mlrun_magic.databricks.storage`:
the Files API for volumes, ``workspace/import`` for workspace files, DBFS's streaming API for
the DBFS root), so what it proves is what an upload needs. The folder is made as an upload
would make it; the probe file is always deleted, also when the check fails half-way.
"""

from __future__ import annotations

import io
import secrets
from urllib.parse import quote

from mlrun_magic.databricks import storage
from mlrun_magic.databricks.errors import NotFound, PermissionDenied
from mlrun_magic.errors import MlrunMagicError

PROBE = b"mlrun_magic doctor: a probe of the code location; safe to delete.\n"


class ProbeLeft(storage.CodeLocationError):
    """The probe was written but could not be deleted: ``path`` says where it is."""

    def __init__(self, path: str, why: str):
        super().__init__(f"the probe file {path} was written but could not be deleted "
                         f"({why})", hint=f"Delete {path} (it is safe to delete).")
        self.path = path
DBFS_ROOT = "/"


def _writer(client, target: storage.Target):
    return {"volume": storage._Volume, "workspace": storage._WorkspaceFiles,
            "dbfs": storage._Dbfs}[target.kind](client)


def probe_location(client, target: storage.Target) -> str:
    """Write then delete ``<folder>/.mlrun_magic-probe-<random>.txt``; the path written.
    Raises the workspace's error (``PermissionDenied``, ``NotFound``...) when it cannot."""
    writer = _writer(client, target)
    path = target.remote(f".mlrun_magic-probe-{secrets.token_hex(6)}.txt")
    writer.mkdirs(target.folder)
    try:
        writer.put(path, io.BytesIO(PROBE), len(PROBE), None)
    except BaseException:
        try:  # it may have been written before the answer was lost
            _delete(client, target.kind, path)
        except Exception:  # noqa: BLE001 (the put's error is the one to tell)
            pass
        raise
    try:
        _delete(client, target.kind, path)
    except MlrunMagicError as exc:
        raise ProbeLeft(path, exc.message) from None
    return path


def _delete(client, kind: str, path: str) -> None:
    try:
        if kind == "volume":
            client.call("DELETE", "/api/2.0/fs/files" + quote(path), raw=True)
        elif kind == "workspace":
            client.call("POST", "/api/2.0/workspace/delete", json={"path": path},
                        idempotent=True)
        else:
            client.call("POST", "/api/2.0/dbfs/delete",
                        json={"path": path[len("dbfs:"):], "recursive": False}, idempotent=True)
    except NotFound:
        pass  # never written (the put failed), or already gone


def dbfs_root_enabled(client) -> tuple[bool, str]:
    """``(enabled, what the workspace said)``: the DBFS root answers ``get-status /``, or
    refuses with 403 "... DBFS root is disabled ..."."""
    try:
        client.call("GET", "/api/2.0/dbfs/get-status", params={"path": DBFS_ROOT})
    except PermissionDenied as exc:
        if "dbfs" in exc.api_message.lower():
            return False, exc.api_message
        raise
    return True, "answers"
